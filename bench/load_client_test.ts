import assert from "node:assert/strict";
import { parseLoadArgs, runLoad } from "./load_client.ts";

Deno.test("parseLoadArgs reads headers, modes and CPU pids", () => {
  const o = parseLoadArgs([
    "--url=http://127.0.0.1:1/v1/me",
    "--header=Authorization: Bearer a:b",
    "--rate=500",
    "--cpu-pid=edge=42",
  ]);
  assert.deepEqual(o.headers, [["Authorization", "Bearer a:b"]]);
  assert.deepEqual(o.rate, 500);
  assert.deepEqual(o.connections, 64);
  assert.deepEqual(o.cpuPids, { edge: 42 });
  assert.throws(() => parseLoadArgs(["--url=ftp://x"]));
  assert.throws(() => parseLoadArgs(["--url=http://x", "--header=novalue"]));
  assert.throws(() => parseLoadArgs(["--url=http://x", "--cpu-pid=edge"]));
  assert.deepEqual(o.engine, "raw");
  assert.deepEqual(parseLoadArgs(["--url=http://x", "--engine=fetch"]).engine, "fetch");
  assert.throws(() => parseLoadArgs(["--url=http://x", "--engine=curl"]));
});

for (const engine of ["raw", "fetch"] as const) {
  Deno.test(`runLoad (${engine}) counts statuses and sends a unique header per request`, async () => {
    const seen = new Set<string>();
    let requests = 0;
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      requests++;
      seen.add(req.headers.get("idempotency-key") ?? "");
      assert.deepEqual(await req.text(), "{}");
      return new Response("x", { status: requests % 10 === 0 ? 503 : 202 });
    });
    try {
      const base = {
        engine,
        url: `http://127.0.0.1:${server.addr.port}/`,
        method: "POST",
        headers: [["Content-Type", "application/json"]] as [string, string][],
        body: "{}",
        uniqueHeader: "Idempotency-Key",
        connections: 4,
        durationS: 0.3,
        warmupS: 0.1,
        graceS: 2,
        cpuPids: { self: Deno.pid },
      };
      const closed = await runLoad({ ...base, rate: null });
      assert.equal(closed.engine, engine);
      assert(closed.requests > 0);
      assert.deepEqual(closed.ok + (closed.errors["503"] ?? 0), closed.requests);
      assert((closed.errors["503"] ?? 0) > 0);
      assert(closed.max_in_flight <= 4);

      const paced = await runLoad({ ...base, rate: 200 });
      assert.deepEqual(paced.mode, "paced");
      assert.deepEqual(paced.requests, 60);
      assert(paced.send_lag_p99_ms !== undefined);
      assert.deepEqual(seen.size, requests, "every request had its own Idempotency-Key");
    } finally {
      await server.shutdown();
    }
  });
}
