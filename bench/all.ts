/**
 * `deno task bench`: runs every benchmark module in bench/ one after another
 * (never in parallel: they would measure each other). Each prints its own
 * JSON lines on stdout.
 *
 * @module
 */

// Support modules, not benchmarks (load generators that bench/gateway.ts and bench/ws.ts spawn).
// peers.ts re-runs scenarios of queue.ts and ws.ts next to their peers (needs node and wrk): run it alone.
const SKIP = new Set(["all.ts", "report.ts", "load_client.ts", "ws_load.ts", "peers.ts"]);

if (import.meta.main) {
  const dir = new URL("./", import.meta.url);
  const modules = [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && e.name.endsWith(".ts") && !e.name.endsWith("_test.ts"))
    .map((e) => e.name)
    .filter((n) => !SKIP.has(n))
    .sort();
  let failed = 0;
  for (const name of modules) {
    console.error(`[bench] ${name}`);
    const status = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(name, dir).pathname],
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) {
      console.error(`[bench] ${name} failed with exit code ${status.code}`);
      failed++;
    }
  }
  Deno.exit(failed === 0 ? 0 : 1);
}
