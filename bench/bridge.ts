/**
 * The Upstash REST bridge (dev/upstash_bridge.ts) against redis-server
 * directly: `deno run -A bench/bridge.ts`. JSON lines on stdout (see
 * report.ts), one per scenario:
 *
 * - `single_get`: sequential GETs through `@upstash/redis` without
 *   auto-pipelining (one HTTP request each), and `bridge_overhead_p50_ms`, the
 *   p50 minus the p50 of the same GET sent straight to Redis;
 * - `direct_burst`: 10,000 SET/GET from 64 concurrent callers straight to
 *   redis-server through node-redis (the bridge's TCP client);
 * - `sdk_ceiling_burst`: the same burst through `@upstash/redis` against an
 *   in-process HTTP stub that answers without Redis: what the SDK and fetch
 *   allow here, whatever the bridge does;
 * - `pipelined_burst`: the same burst through `@upstash/redis` with
 *   auto-pipelining, with `ratio` = its ops/s ÷ direct ops/s and
 *   `ratio_to_sdk_ceiling` = its ops/s ÷ the stub's.
 *
 * The bridge runs in this process, as in `dev/stack.ts`, so `cpu_us_per_op`
 * of `pipelined_burst` is the SDK and the bridge together. Bursts run several
 * rounds, alternating the targets; ops/s is the median round.
 *
 * With UPSTASH_REDIS_REST_URL and UPSTASH_REDIS_REST_TOKEN set, that endpoint
 * is measured instead and nothing is started; the direct scenarios then need
 * REDIS_URL and are skipped without it.
 *
 * @module
 */
import { Redis } from "@upstash/redis";
import { createClient } from "redis";
import { startBridgeFixture } from "../testing/upstash_bridge.ts";
import { cpuMicros } from "./lib/cpu.ts";
import { percentile, round3, runScenario } from "./lib/report.ts";
import type { BenchLine } from "./lib/report.ts";

const BENCH = "bridge";
const SINGLE_N = 3000;
const BURST_N = 10_000;
const CONCURRENCY = 64;
const ROUNDS = 3;

interface Target {
  restUrl: string;
  restToken: string;
  /** redis:// URL for the direct scenarios, or null to skip them. */
  redisUrl: string | null;
  stop(): Promise<void>;
}

async function localTarget(): Promise<Target> {
  // The same redis-server + bridge the conformance tests use, but with the
  // stack's AOF policy so the direct scenario measures a realistic server.
  const fixture = await startBridgeFixture({ appendfsync: "everysec" });
  const { redis, bridge } = fixture;
  console.error(
    `[bridge] redis-server 127.0.0.1:${redis.port}, bridge ${bridge.url} (in this process)`,
  );
  return {
    restUrl: bridge.url,
    restToken: bridge.token,
    redisUrl: redis.url,
    stop: async () => await fixture[Symbol.asyncDispose](),
  };
}

function configuredTarget(env: Record<string, string | undefined>): Target | null {
  const restUrl = env.UPSTASH_REDIS_REST_URL;
  const restToken = env.UPSTASH_REDIS_REST_TOKEN;
  if (!restUrl || !restToken) return null;
  const redisUrl = env.REDIS_URL || null;
  console.error(`[bridge] measuring the configured endpoint ${restUrl}`);
  if (redisUrl === null) {
    console.error("[bridge] REDIS_URL is not set: skipping the direct scenarios and the ratio");
  }
  return { restUrl, restToken, redisUrl, stop: () => Promise.resolve() };
}

/** Runs `op(i)` for i in 0…n-1 from `concurrency` callers; returns elapsed ms and CPU µs. */
async function burst(
  n: number,
  concurrency: number,
  op: (i: number) => Promise<unknown>,
): Promise<{ ms: number; cpuUs: number }> {
  let next = 0;
  const cpu0 = cpuMicros();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await op(next++);
    }),
  );
  return { ms: performance.now() - t0, cpuUs: cpuMicros() - cpu0 };
}

/** Half SET, half GET over 100 keys, like a cache in front of a database. */
function setGet(client: {
  set(key: string, value: string): Promise<unknown>;
  get(key: string): Promise<unknown>;
}): (i: number) => Promise<unknown> {
  return (i) =>
    i % 2 === 0 ? client.set(`bench:${i % 100}`, "v".repeat(32)) : client.get(`bench:${i % 100}`);
}

async function sequentialLatencies(n: number, op: () => Promise<unknown>): Promise<number[]> {
  for (let i = 0; i < 200; i++) await op(); // warm-up: JIT, connections
  const samples = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op();
    samples[i] = performance.now() - t0;
  }
  return samples;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

/**
 * An HTTP stub answering every pipeline as the bridge would, without Redis:
 * the ceiling that `@upstash/redis` and fetch allow in this process.
 */
function startSdkStub(): Deno.HttpServer<Deno.NetAddr> {
  const value = `{"result":"${btoa("v".repeat(32))}"}`;
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const commands = JSON.parse(await req.text()) as string[][];
    const entries = commands.map((command) => command[0] === "set" ? '{"result":"T0s="}' : value);
    return new Response(`[${entries.join(",")}]`, {
      headers: { "content-type": "application/json" },
    });
  });
}

type Round = { ms: number; cpuUs: number };

function opsPerS(rounds: Round[]): number {
  return Math.round(median(rounds.map((r) => BURST_N / (r.ms / 1000))));
}

function cpuPerOp(rounds: Round[]): number {
  return round3(rounds.reduce((a, r) => a + r.cpuUs, 0) / (rounds.length * BURST_N));
}

/** Burst rounds per named op: one warm-up each, then alternating so noise hits all alike. */
async function burstRounds(
  ops: Record<string, (i: number) => Promise<unknown>>,
): Promise<Record<string, Round[]>> {
  const rounds: Record<string, Round[]> = {};
  for (const op of Object.values(ops)) await burst(BURST_N, CONCURRENCY, op);
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, op] of Object.entries(ops)) {
      (rounds[name] ??= []).push(await burst(BURST_N, CONCURRENCY, op));
    }
  }
  return rounds;
}

async function singleGet(single: Redis, direct: RedisClient | null): Promise<BenchLine> {
  const viaBridge = await sequentialLatencies(SINGLE_N, () => single.get("bench:get"));
  const p50 = percentile(viaBridge, 50);
  const line = {
    bench: BENCH,
    scenario: "single_get",
    ops_per_s: Math.round(SINGLE_N / (viaBridge.reduce((a, b) => a + b, 0) / 1000)),
    p50_ms: round3(p50),
    p99_ms: round3(percentile(viaBridge, 99)),
    n: SINGLE_N,
  };
  if (direct === null) return line;
  const viaTcp = await sequentialLatencies(SINGLE_N, () => direct.get("bench:get"));
  const directP50 = percentile(viaTcp, 50);
  return {
    ...line,
    direct_p50_ms: round3(directP50),
    direct_p99_ms: round3(percentile(viaTcp, 99)),
    bridge_overhead_p50_ms: round3(p50 - directP50),
  };
}

function burstLine(scenario: string, rounds: Round[], extra: Record<string, number> = {}) {
  return Promise.resolve({
    bench: BENCH,
    scenario,
    ops_per_s: opsPerS(rounds),
    n: BURST_N,
    concurrency: CONCURRENCY,
    rounds: ROUNDS,
    cpu_us_per_op: cpuPerOp(rounds),
    ...extra,
  });
}

type RedisClient = ReturnType<typeof createClient>;

async function main(): Promise<void> {
  const target = configuredTarget(Deno.env.toObject()) ?? await localTarget();
  // The direct client gets the bridge's own settings (RESP2, no per-command
  // timeout timer), so the ratio compares against the fastest direct path.
  const direct: RedisClient | null = target.redisUrl === null
    ? null
    : createClient({ url: target.redisUrl, RESP: 2, commandOptions: { timeout: 0 } });
  const stub = startSdkStub();
  try {
    await direct?.connect();
    const options = { url: target.restUrl, token: target.restToken };
    const single = new Redis({ ...options, enableAutoPipelining: false });
    await single.set("bench:get", "v".repeat(32));
    await runScenario(() => singleGet(single, direct));

    const ops: Record<string, (i: number) => Promise<unknown>> = {
      bridge: setGet(new Redis(options)),
      stub: setGet(new Redis({ url: `http://127.0.0.1:${stub.addr.port}`, token: "stub" })),
    };
    if (direct !== null) ops.direct = setGet(direct);
    const rounds = await burstRounds(ops);
    const bridgeOps = opsPerS(rounds.bridge!);
    const stubOps = opsPerS(rounds.stub!);
    if (rounds.direct) await runScenario(() => burstLine("direct_burst", rounds.direct!));
    await runScenario(() => burstLine("sdk_ceiling_burst", rounds.stub!));
    await runScenario(() =>
      burstLine("pipelined_burst", rounds.bridge!, {
        ...(rounds.direct ? { ratio: round3(bridgeOps / opsPerS(rounds.direct)) } : {}),
        ratio_to_sdk_ceiling: round3(bridgeOps / stubOps),
      })
    );
  } finally {
    if (direct?.isOpen) await direct.close();
    await stub.shutdown();
    await target.stop();
  }
}

if (import.meta.main) {
  await main();
}
