/**
 * The Redis side of the bridge through HTTP: conformance groups D
 * (/multi-exec on dedicated connections) and G (Redis going away, keep-alive
 * clients) of docs/reference/upstash-rest-protocol.md §13.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { isErrorBody, startBridgeFixture, TOKEN } from "../../testing/upstash_bridge.ts";

Deno.test("D: /multi-exec runs atomically on a connection of its own", async (t) => {
  await using fx = await startBridgeFixture();

  await t.step("D1 a transaction answers one entry per command", async () => {
    const res = await fx.post("/multi-exec", [["SET", "t", "1"], ["INCR", "t"], ["GET", "t"]]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, [{ result: "T0s=" }, { result: 2 }, { result: "Mg==" }]);
  });

  await t.step("D2 a runtime error is an entry; the other commands take effect", async () => {
    const res = await fx.post("/multi-exec", [["SET", "s", "x"], ["INCR", "s"], ["GET", "s"]]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, [
      { result: "T0s=" },
      { error: "ERR value is not an integer or out of range" },
      { result: "eA==" },
    ]);
  });

  await t.step("D3 a queuing error discards the whole transaction with EXECABORT", async () => {
    const res = await fx.post("/multi-exec", [["SET", "q", "1"], ["GET"]]);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body, {
      error: "EXECABORT Transaction discarded because of previous errors.",
    });
    assert.deepEqual((await fx.post("/", ["EXISTS", "q"])).body, { result: 0 });
  });

  await t.step("D4 20 concurrent transactions all succeed (SRH #25)", async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fx.post("/multi-exec", [["SET", `k${i}`, "foo"]])),
    );
    for (const res of answers) {
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, [{ result: "T0s=" }]);
    }
    const keys = Array.from({ length: 20 }, (_, i) => `k${i}`);
    assert.deepEqual((await fx.post("/", ["MGET", ...keys])).body, {
      result: Array(20).fill("Zm9v"),
    });
  });

  await t.step("D5 50 concurrent INCR pairs each see consecutive values", async () => {
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => fx.post("/multi-exec", [["INCR", "c"], ["INCR", "c"]])),
    );
    const seen: number[] = [];
    for (const res of answers) {
      assert.equal(res.status, 200);
      const [first, second] = res.body as { result: number }[];
      assert.equal(second!.result, first!.result + 1);
      seen.push(first!.result, second!.result);
    }
    assert.deepEqual(seen.sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i + 1));
  });

  await t.step("refused commands are refused inside a transaction too", async () => {
    const res = await fx.post("/multi-exec", [["SET", "w", "1"], ["WATCH", "w"]]);
    assert.equal(res.status, 400);
    assert.ok(isErrorBody(res.body));
    assert.deepEqual((await fx.post("/", ["EXISTS", "w"])).body, { result: 0 });
  });
});

Deno.test("G: the bridge survives Redis going away and serves keep-alive clients", async (t) => {
  await using fx = await startBridgeFixture();

  await t.step(
    "G1 Redis stopped → 5xx JSON fast; the first request after restart is 200",
    async () => {
      assert.deepEqual((await fx.post("/", ["SET", "g", "1"])).body, { result: "T0s=" });
      await fx.redis.stop();
      for (
        const [path, body] of [["/", ["GET", "g"]], ["/pipeline", [["GET", "g"]]], [
          "/multi-exec",
          [["GET", "g"]],
        ]] as const
      ) {
        const started = performance.now();
        const res = await fx.post(path, body);
        assert.ok(res.status >= 500 && res.status < 600, `${path}: ${res.status}`);
        assert.ok(isErrorBody(res.body), res.text);
        assert.ok(performance.now() - started < 1000, "the error must come fast");
      }
      await fx.redis.restart();
      const res = await fx.post("/", ["GET", "g"]);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { result: "MQ==" }); // AOF kept the value
    },
  );

  await t.step("G1 through @upstash/redis: a readable UpstashError, then recovery", async () => {
    const redis = new Redis({ url: fx.bridge.url, token: TOKEN, retry: false });
    await fx.redis.stop();
    await assert.rejects(redis.get("g"), (err: Error) => {
      assert.equal(err.name, "UpstashError");
      assert.match(err.message, /Redis at 127\.0\.0\.1:\d+ is unavailable/);
      return true;
    });
    await fx.redis.restart();
    assert.equal(await redis.get("g"), 1);
  });

  await t.step(
    "G2 1000 sequential requests on keep-alive connections are complete JSON",
    async () => {
      for (let i = 0; i < 1000; i++) {
        const res = await fx.post("/pipeline", [["INCR", "g2"]]);
        assert.equal(res.status, 200);
        assert.equal(res.text, `[{"result":${i + 1}}]`);
      }
    },
  );
});
