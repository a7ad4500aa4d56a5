/**
 * SIGTERM while a lead write hangs on a Postgres connection that silently
 * stopped answering (the fault proxy's blackhole, with a write deadline far
 * beyond the drain): the edge stops accepting, gives the drain
 * SHUTDOWN_TIMEOUT_MS, and exits within SHUTDOWN_TIMEOUT_MS +
 * SHUTDOWN_CLEANUP_MS (its shutdown deadline) instead of waiting for the
 * hung connection (found by `deno task chaos`: an edge draining such a
 * request did not exit, docs/reliability.md).
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "../dev/chaos/fault_proxy.ts";
import { migrateStack } from "../dev/migrate_stack.ts";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { mintDevToken } from "../dev/token.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { SHUTDOWN_CLEANUP_MS } from "../shared/lifecycle.ts";
import { AppProcess } from "../testing/process.ts";

Deno.test("edge SIGTERM with a write hung on a silent database exits within its shutdown deadline", async () => {
  await using stack = await startStack();
  await migrateStack(stack.settings);
  const base = settingsToEnv(stack.settings);
  const neonPort = Number(/:(\d+)\//.exec(base.NEON_WS_PROXY ?? "")?.[1]);
  await using proxy = await startFaultProxy({ upstreamPort: neonPort });
  const env = {
    ...base,
    NEON_WS_PROXY: `127.0.0.1:${proxy.port}/v1`,
    APP_ENV: "development",
    EDGE_PORT: "0",
    DB_POOL_MAX: "2",
    // The write would wait a minute; the drain gives it one second.
    DB_WRITE_TIMEOUT_MS: "60000",
    SHUTDOWN_TIMEOUT_MS: "1000",
  };
  const token = await mintDevToken(parseConfig(env).auth, { sub: "sa:minerva" });
  const edge = new AppProcess("edge/main.ts", env);
  const post = (url: string, name: string) =>
    fetch(`${url}/v1/leads`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        "idempotency-key": `hung-${name}`,
      },
      body: JSON.stringify({ name, city: "Hungtown" }),
    });
  try {
    const { url } = await edge.waitForLog("edge listening") as { url: string };
    const warm = await post(url, `warm ${crypto.randomUUID()}`);
    assert.equal(warm.status, 201, await warm.text());
    proxy.setFault({ kind: "blackhole" });
    const hung = post(url, `hung ${crypto.randomUUID()}`).catch(() => null);
    await new Promise((r) => setTimeout(r, 500));
    const signalled = Date.now();
    edge.child.kill("SIGTERM");
    const { code } = await edge.finished();
    const took = Date.now() - signalled;
    // Within the drain plus the cleanup budget (the shutdown deadline), with a margin for a
    // loaded machine; shared/lifecycle_test.ts shows the deadline itself cutting a hung stop.
    assert.ok(
      took < 1000 + SHUTDOWN_CLEANUP_MS + 2000,
      `exited ${took} ms after SIGTERM (code ${code}):\n${edge.lines.slice(-8).join("\n")}`,
    );
    assert.ok(edge.lines.some((l) => l.includes('"edge draining"')));
    await hung;
  } finally {
    await edge.kill();
    proxy.setFault({ kind: "pass" });
  }
});
