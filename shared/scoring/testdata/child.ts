/**
 * A second process for deploy_test.ts: `watch <url> <wsProxy>` follows the
 * champions and prints `{"population":P,"version":N}` on every change; `rescore <url>
 * <wsProxy> <activationId>` rescores in chunks of 5, printing each chunk.
 */
import { createPool } from "../../db/pool.ts";
import { createLogger } from "../../log.ts";
import { ChampionWatcher } from "../champion.ts";
import { rescoreOpenLeads } from "../scores.ts";

const [mode, url, wsProxy, activation] = Deno.args;
const sql = createPool({
  databaseUrl: url!,
  wsProxy: wsProxy!,
  useSecureWebSocket: false,
  pipelineConnect: false,
  max: 2,
  onError: () => {},
});
const print = (value: unknown) => console.log(JSON.stringify(value));
if (mode === "watch") {
  const log = createLogger({
    level: "info",
    write: (line) => {
      const entry = JSON.parse(line);
      if (entry.msg === "lead-scoring champion changed") {
        print({ population: entry.population, version: entry.to });
      }
    },
  });
  const watcher = new ChampionWatcher({ sql, log, intervalMs: 100 });
  await watcher.start();
  print({ ready: true, versions: watcher.versions });
} else {
  await rescoreOpenLeads(sql, Number(activation), Date.now, {
    chunkSize: 5,
    onChunk: (progress) => print(progress),
  });
  print({ done: true });
}
