/**
 * The shebang rewrite and SHA map, alone and through the bridge: conformance
 * group E of docs/reference/upstash-rest-protocol.md §13 (raw HTTP, `@upstash/redis` and
 * `@upstash/ratelimit`).
 */
import assert from "node:assert/strict";
import { Ratelimit } from "@upstash/ratelimit";
import { Redis } from "@upstash/redis";
import { parseCommand } from "./commands.ts";
import { rewriteShebang, ScriptRegistry, sha1Hex } from "./scripts.ts";
import { b64, startBridgeFixture, TOKEN } from "../../testing/upstash_bridge.ts";
import type { BridgeFixture } from "../../testing/upstash_bridge.ts";

/**
 * The fixedWindow limit script of @upstash/ratelimit 2.2.0, copied verbatim
 * (its SHA is checked below against the one the package hard-codes).
 */
const FIXED_WINDOW_LIMIT = `#!lua flags=allow-key-locking
  local key           = KEYS[1]
  local dynamicLimitKey = KEYS[2]  -- optional: key for dynamic limit in redis
  local tokens        = tonumber(ARGV[1])  -- default limit
  local window        = ARGV[2]
  local incrementBy   = ARGV[3] -- increment rate per request at a given value, default is 1

  -- Check for dynamic limit
  local effectiveLimit = tokens
  if dynamicLimitKey and dynamicLimitKey ~= "" then
    local dynamicLimit = redis.call("GET", dynamicLimitKey)
    if dynamicLimit then
      effectiveLimit = tonumber(dynamicLimit)
    end
  end

  local r = redis.call("INCRBY", key, incrementBy)
  if r == tonumber(incrementBy) then
  -- The first time this key is set, the value will be equal to incrementBy.
  -- So we only need the expire command once
  redis.call("PEXPIRE", key, window)
  end

  return {r, effectiveLimit}
`;
const FIXED_WINDOW_LIMIT_SHA = "b2efc02798c8e9b471a10f9b1d5745db89923ff3";
const NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL.";

Deno.test("rewriteShebang() drops only allow-key-locking and keeps the line count", () => {
  assert.equal(rewriteShebang("#!lua flags=allow-key-locking\nreturn 1"), "#!lua flags=\nreturn 1");
  assert.equal(
    rewriteShebang("#!lua flags=no-writes,allow-key-locking\nreturn 1"),
    "#!lua flags=no-writes\nreturn 1",
  );
  assert.equal(
    rewriteShebang("#!lua flags=allow-key-locking,allow-oom,no-cluster\r\nreturn 1\n"),
    "#!lua flags=allow-oom,no-cluster\r\nreturn 1\n",
  );
  assert.equal(rewriteShebang("#!lua flags=allow-key-locking"), "#!lua flags=");
  const rewritten = rewriteShebang(FIXED_WINDOW_LIMIT)!;
  assert.equal(rewritten.split("\n").length, FIXED_WINDOW_LIMIT.split("\n").length);
  assert.equal(rewritten.split("\n")[0], "#!lua flags=");
  assert.equal(
    rewritten.slice(rewritten.indexOf("\n")),
    FIXED_WINDOW_LIMIT.slice(FIXED_WINDOW_LIMIT.indexOf("\n")),
  );
  // Nothing to do: no shebang, another flag, the word only in the body.
  assert.equal(rewriteShebang("return 1"), null);
  assert.equal(rewriteShebang("#!lua flags=no-writes\nreturn 1"), null);
  assert.equal(rewriteShebang("#!lua\n-- allow-key-locking\nreturn 1"), null);
  assert.equal(rewriteShebang("return 'allow-key-locking'"), null);
});

Deno.test("ScriptRegistry maps original SHAs to rewritten ones", () => {
  assert.equal(sha1Hex(FIXED_WINDOW_LIMIT), FIXED_WINDOW_LIMIT_SHA);
  const registry = new ScriptRegistry();
  const rewrittenSha = sha1Hex(rewriteShebang(FIXED_WINDOW_LIMIT)!);

  const evalsha = parseCommand(["evalsha", FIXED_WINDOW_LIMIT_SHA, 1, "k", 10, 10000, 1]);
  assert.equal(registry.prepare(evalsha), undefined);
  assert.equal(evalsha.args[1], FIXED_WINDOW_LIMIT_SHA, "unknown SHAs pass unchanged");

  const evalCommand = parseCommand(["eval", FIXED_WINDOW_LIMIT, 1, "k", 10, 10000, 1]);
  registry.prepare(evalCommand);
  assert.equal(evalCommand.args[1], rewriteShebang(FIXED_WINDOW_LIMIT));
  assert.equal(registry.size, 1);

  const again = parseCommand(["EVALSHA_RO", FIXED_WINDOW_LIMIT_SHA.toUpperCase(), 0]);
  registry.prepare(again);
  assert.equal(again.args[1], rewrittenSha);

  const exists = parseCommand(["script", "exists", FIXED_WINDOW_LIMIT_SHA, "f".repeat(40)]);
  registry.prepare(exists);
  assert.deepEqual(exists.args.slice(2), [rewrittenSha, "f".repeat(40)]);

  const load = parseCommand(["SCRIPT", "LOAD", "#!lua flags=allow-key-locking\nreturn 2"]);
  const fix = registry.prepare(load)!;
  assert.equal(load.args[2], "#!lua flags=\nreturn 2");
  const answer = fix(new TextEncoder().encode(sha1Hex(load.args[2]!)));
  assert.equal(
    new TextDecoder().decode(answer as Uint8Array),
    sha1Hex("#!lua flags=allow-key-locking\nreturn 2"),
  );
  const error = new Error("ERR Error compiling script");
  assert.equal(fix(error), error, "an error reply passes through");
});

function sdkClient(fx: BridgeFixture): Redis {
  return new Redis({ url: fx.bridge.url, token: TOKEN, retry: false });
}

/** Number of NOSCRIPT errors Redis has answered so far. */
async function noscriptCount(fx: BridgeFixture): Promise<number> {
  const res = await fx.post("/", ["INFO", "errorstats"], { raw: true });
  const match = /errorstat_NOSCRIPT:count=(\d+)/.exec((res.body as { result: string }).result);
  return match ? Number(match[1]) : 0;
}

Deno.test("E: scripts, allow-key-locking and ratelimit work on stock Redis", async (t) => {
  await using fx = await startBridgeFixture();
  const redis = sdkClient(fx);

  await t.step("E1 EVAL of an allow-key-locking script runs", async () => {
    const res = await fx.post("/", ["EVAL", "#!lua flags=allow-key-locking\nreturn 1", 0]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { result: 1 });
  });

  await t.step("E2 SCRIPT LOAD answers the original SHA, and EVALSHA of it hits", async () => {
    const script = "#!lua flags=allow-key-locking\nreturn 1";
    const sha = sha1Hex(script);
    assert.deepEqual((await fx.post("/", ["SCRIPT", "LOAD", script])).body, { result: b64(sha) });
    assert.deepEqual((await fx.post("/", ["SCRIPT", "LOAD", script], { raw: true })).body, {
      result: sha,
    });
    assert.deepEqual((await fx.post("/", ["EVALSHA", sha, 0])).body, { result: 1 });
    assert.deepEqual(
      (await fx.post("/pipeline", [["SCRIPT", "EXISTS", sha, "0".repeat(40)]])).body,
      [
        { result: [1, 0] },
      ],
    );
  });

  await t.step("E3 other flags are kept: no-writes still refuses writes", async () => {
    const res = await fx.post("/", [
      "EVAL",
      "#!lua flags=no-writes,allow-key-locking\nreturn redis.call('SET','k','v')",
      1,
      "k",
    ]);
    assert.equal(res.status, 400);
    assert.match(
      (res.body as { error: string }).error,
      /Write commands are not allowed from read-only scripts/,
    );
  });

  await t.step("E4 NOSCRIPT, EVAL fallback, then EVALSHA of the original SHA hits", async () => {
    await fx.post("/", ["SCRIPT", "FLUSH"]);
    const evalsha = ["EVALSHA", FIXED_WINDOW_LIMIT_SHA, 1, "rl:x:1", 10, 10000, 1];
    assert.deepEqual((await fx.post("/pipeline", [evalsha])).body, [{ error: NOSCRIPT }]);
    assert.deepEqual((await fx.post("/", evalsha)).body, { error: NOSCRIPT });
    const evalCommand = ["EVAL", FIXED_WINDOW_LIMIT, 1, "rl:x:1", 10, 10000, 1];
    assert.deepEqual((await fx.post("/pipeline", [evalCommand])).body, [{ result: [1, 10] }]);
    assert.deepEqual((await fx.post("/", evalsha)).body, { result: [2, 10] });
    // Through the SDK: NOSCRIPT arrives in upper case (ratelimit's fallback
    // test is case-sensitive), and the original SHA hits.
    await assert.rejects(redis.evalsha("f".repeat(40), [], []), /NOSCRIPT No matching script/);
    assert.deepEqual(await redis.evalsha(FIXED_WINDOW_LIMIT_SHA, ["rl:y"], [5, 10000, 1]), [1, 5]);
  });

  await t.step("E5 fixedWindow allows two of three; one NOSCRIPT fallback, then hits", async () => {
    await fx.post("/", ["SCRIPT", "FLUSH"]);
    const before = await noscriptCount(fx);
    const ratelimit = new Ratelimit({
      redis,
      limiter: Ratelimit.fixedWindow(2, "10 s"),
      ephemeralCache: false,
      prefix: "e5",
    });
    const first = await ratelimit.limit("id");
    assert.equal(await noscriptCount(fx), before + 1, "EVALSHA → NOSCRIPT → EVAL");
    const second = await ratelimit.limit("id");
    const third = await ratelimit.limit("id");
    assert.deepEqual(
      [first, second, third].map(({ success, remaining, limit, reason }) => ({
        success,
        remaining,
        limit,
        reason,
      })),
      [
        { success: true, remaining: 1, limit: 2, reason: undefined },
        { success: true, remaining: 0, limit: 2, reason: undefined },
        { success: false, remaining: 0, limit: 2, reason: undefined },
      ],
    );
    assert.equal(await noscriptCount(fx), before + 1, "the SHA map makes EVALSHA hit");
  });

  for (
    const [name, limiter] of [
      ["slidingWindow(2, 10 s)", Ratelimit.slidingWindow(2, "10 s")],
      ["tokenBucket(1, 10 s, 2)", Ratelimit.tokenBucket(1, "10 s", 2)],
    ] as const
  ) {
    await t.step(`E6/E7 ${name}: two of three, getRemaining, resetUsedTokens`, async () => {
      const prefix = `e6:${name}`;
      const ratelimit = new Ratelimit({ redis, limiter, ephemeralCache: false, prefix });
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await ratelimit.limit("id"));
      assert.deepEqual(results.map((r) => [r.success, r.reason]), [
        [true, undefined],
        [true, undefined],
        [false, undefined],
      ]);
      const remaining = await ratelimit.getRemaining("id");
      assert.equal(remaining.remaining, 0);
      assert.equal(remaining.limit, 2);
      await ratelimit.resetUsedTokens("id");
      const fresh = new Ratelimit({ redis, limiter, prefix });
      const after = await fresh.limit("id");
      assert.equal(after.success, true);
      assert.equal(after.reason, undefined);
    });
  }

  await t.step("E8 createScript: EVALSHA miss then EVAL, then an EVALSHA hit", async () => {
    const script = redis.createScript<string>("return ARGV[1]");
    const before = await noscriptCount(fx);
    assert.equal(await script.exec([], ["hi"]), "hi");
    assert.equal(await noscriptCount(fx), before + 1, "the first call misses");
    assert.equal(await script.exec([], ["hi"]), "hi");
    assert.equal(await noscriptCount(fx), before + 1, "the second call is a hit");
  });
});
