import assert from "node:assert/strict";
import { type TestStack, useTestStack } from "../../testing/stack.ts";
import { createRedis } from "../deps.ts";
import { createLogger } from "../log.ts";
import { type BreakerRegistry, createBreakerRegistry } from "./registry.ts";
import type { BreakerPolicyInput } from "./policy.ts";
import type { BreakerTransition } from "./types.ts";
import { BreakerOpenError, BreakerThrottledError, BreakerTimeoutError } from "./errors.ts";
import { outcome, startUpstream } from "../../testing/upstream.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { freePort } from "../../dev/ports.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Real Redis through the bridge, two registries (= two instances) per test.
// Sanitizers stay on: stop() unsubscribes and waits for the pending reports.

let stack: TestStack;

async function withInstances(
  policies: Record<string, BreakerPolicyInput>,
  fn: (a: BreakerRegistry, b: BreakerRegistry, events: BreakerTransition[]) => Promise<void>,
): Promise<void> {
  const namespace = testNamespace();
  const logs: string[] = [];
  const make = () =>
    createBreakerRegistry({
      redis: createRedis(stack.settings.redis),
      policies,
      namespace,
      log: createLogger({ level: "debug", write: (l) => logs.push(l) }),
    });
  const a = make();
  const b = make();
  const events: BreakerTransition[] = [];
  a.events.addEventListener("transition", (e) => events.push((e as CustomEvent).detail));
  try {
    await Promise.all([a.start(), b.start()]);
    await fn(a, b, events);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
  }
}

/** Blocks this process's event loop for `ms`. */
function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) { /* stalled */ }
}

const failing = () => Promise.reject(Object.assign(new Error("upstream 503"), { status: 503 }));

Deno.test({
  name: "breaker registry against Redis",
  // The SDK's SSE subscription is torn down asynchronously (unsubscribe aborts
  // the fetch; its body read settles a tick later), which the op/resource
  // sanitizers report as a leak under load. Each step stops its registries.
  ...noSanitizers,
}, async (t) => {
  stack = await useTestStack();
  try {
    await t.step(
      "fail_max consecutive 5xx trip CLOSED → OPEN; calls are refused on both instances without reaching the upstream",
      async () => {
        await using upstream = startUpstream();
        await withInstances(
          { up: { fail_max: 3, reset_timeout_ms: 60_000 } },
          async (a, b, events) => {
            upstream.mode = { status: 503 };
            for (let i = 0; i < 3; i++) {
              assert.equal(await outcome(a.get("up").fetch(upstream.url)), "503");
            }
            await waitUntil(() => a.get("up").state === "open" && b.get("up").state === "open");
            const before = upstream.count;
            for (const r of [a, b]) {
              await assert.rejects(r.get("up").fetch(upstream.url), (err: BreakerOpenError) => {
                assert.equal(err.name, "BreakerOpenError");
                assert.equal(err.code, "breaker-open");
                assert.ok(
                  err.retryAfterMs! > 59_000 && err.retryAfterMs! <= 60_000,
                  String(err.retryAfterMs),
                );
                return true;
              });
            }
            assert.equal(upstream.count, before);
            assert.equal(events[0]?.reason, "consecutive_failures");
            const [snap] = await a.list();
            assert.equal(snap!.state, "open");
            assert.equal(snap!.trips, 1);
            assert.ok(a.metrics.rejected >= 1 && b.metrics.rejected >= 1);
          },
        );
      },
    );

    await t.step(
      "4xx never trips; 429 neither trips nor counts and surfaces Retry-After",
      async () => {
        await using upstream = startUpstream();
        await withInstances({ up: { fail_max: 2, reset_timeout_ms: 60_000 } }, async (a) => {
          const up = a.get("up");
          upstream.mode = { status: 404 };
          for (let i = 0; i < 20; i++) assert.equal(await outcome(up.fetch(upstream.url)), "404");
          upstream.mode = { status: 429, headers: { "retry-after": "3" } };
          for (let i = 0; i < 20; i++) {
            await assert.rejects(up.fetch(upstream.url), (err: BreakerThrottledError) => {
              assert.equal(err.code, "breaker-throttled");
              assert.equal(err.retryAfterMs, 3000);
              assert.equal(err.response?.status, 429);
              void err.response?.body?.cancel();
              return true;
            });
          }
          upstream.mode = { status: 429 }; // without Retry-After: returned as is
          assert.equal(await outcome(up.fetch(upstream.url)), "429");
          // A 5xx run broken by a 4xx does not trip either.
          for (const status of [500, 404, 500, 429, 404, 500]) {
            upstream.mode = { status };
            await outcome(up.fetch(upstream.url));
          }
          // 20 × 404 and the 5 non-429 answers were counted; 429s never are.
          await waitUntil(() => a.metrics.flushedOutcomes === 25);
          assert.equal(up.state, "closed");
          const [snap] = await a.list();
          assert.equal(snap!.state, "closed");
          assert.equal(snap!.consecutiveFailures, 1);
          assert.equal(snap!.trips, 0);
        });
      },
    );

    await t.step("timeouts and connection errors count as failures", async () => {
      await using upstream = startUpstream();
      await withInstances(
        { up: { fail_max: 2, reset_timeout_ms: 60_000, timeout_ms: 100 } },
        async (a) => {
          const up = a.get("up");
          upstream.mode = { status: 200, delayMs: 300 };
          await assert.rejects(up.fetch(upstream.url), BreakerTimeoutError);
          // A port nobody listens on.
          await assert.rejects(up.fetch(`http://127.0.0.1:${freePort()}/`), TypeError);
          await waitUntil(() => up.state === "open");
          // call(): a timeout aborts the signal handed to fn.
          await a.reset("up");
          let aborted = false;
          await assert.rejects(
            up.call((signal) =>
              new Promise((_, reject) => {
                signal!.addEventListener("abort", () => {
                  aborted = true;
                  reject(signal!.reason);
                });
              }), { timeoutMs: 50 }),
            BreakerTimeoutError,
          );
          assert.ok(aborted);
          await new Promise((r) => setTimeout(r, 80)); // let the upstream's delayed answer finish
        },
      );
    });

    await t.step(
      "OPEN → HALF_OPEN after the reset timeout; a failed probe re-opens, a successful one closes",
      async () => {
        await using upstream = startUpstream();
        await withInstances(
          { up: { fail_max: 1, reset_timeout_ms: 200 } },
          async (a, b, events) => {
            upstream.mode = { status: 500 };
            await outcome(a.get("up").fetch(upstream.url));
            await waitUntil(() => b.get("up").state === "open");
            await new Promise((r) => setTimeout(r, 210));
            // b probes; the probe fails → OPEN again, with a fresh reset timeout.
            assert.equal(await outcome(b.get("up").fetch(upstream.url)), "500");
            assert.equal(b.get("up").state, "open");
            assert.equal(await outcome(b.get("up").fetch(upstream.url)), "BreakerOpenError");
            await new Promise((r) => setTimeout(r, 210));
            upstream.mode = { status: 200 };
            assert.equal(await outcome(a.get("up").fetch(upstream.url)), "200");
            assert.equal(a.get("up").state, "closed");
            await waitUntil(() => b.get("up").state === "closed");
            await waitUntil(() => events.length >= 5);
            assert.deepEqual(events.map((e) => `${e.from}>${e.to}:${e.reason}`), [
              "closed>open:consecutive_failures",
              "open>half_open:reset_timeout",
              "half_open>open:probe_failed",
              "open>half_open:reset_timeout",
              "half_open>closed:probe_succeeded",
            ]);
            assert.ok(events.every((e) => e.source === "redis"));
          },
        );
      },
    );

    await t.step("success_threshold 2 needs two probe successes, one at a time", async () => {
      await using upstream = startUpstream();
      await withInstances(
        { up: { fail_max: 1, reset_timeout_ms: 100, success_threshold: 2 } },
        async (a, b) => {
          upstream.mode = { status: 500 };
          await outcome(a.get("up").fetch(upstream.url));
          await new Promise((r) => setTimeout(r, 110));
          upstream.mode = { status: 200 };
          assert.equal(await outcome(a.get("up").fetch(upstream.url)), "200");
          assert.equal(a.get("up").state, "half_open");
          // B learns from the channel that the lease is free again.
          await waitUntil(() =>
            b.get("up").state === "half_open" && b.get("up").snapshot().probeRemainingMs === null
          );
          assert.equal(await outcome(b.get("up").fetch(upstream.url)), "200");
          assert.equal(b.get("up").state, "closed");
          await waitUntil(() => a.get("up").state === "closed");
        },
      );
    });

    await t.step(
      "failure-rate rule trips only at the minimum volume, across instances",
      async () => {
        await withInstances({
          up: {
            fail_max: 100,
            reset_timeout_ms: 60_000,
            failure_rate: { threshold_pct: 50, window_ms: 5_000, min_calls: 20 },
          },
        }, async (a, b, events) => {
          const ok = () => Promise.resolve("ok");
          // 18 calls, 9 failed (alternating, so never 2 in a row): below the volume.
          for (let i = 0; i < 9; i++) {
            for (const r of [a, b]) {
              await r.get("up").call(i % 2 === 0 ? ok : failing).catch(() => {});
            }
            await a.get("up").call(i % 2 === 0 ? failing : ok).catch(() => {});
          }
          await waitUntil(() => a.metrics.flushedOutcomes + b.metrics.flushedOutcomes === 27);
          assert.equal(a.get("up").state, "closed");
          assert.equal((await a.list())[0]!.state, "closed");
          await a.get("up").call(failing).catch(() => {});
          await b.get("up").call(ok);
          await b.get("up").call(failing).catch(() => {});
          await waitUntil(() => a.get("up").state === "open" && b.get("up").state === "open");
          assert.equal(events[0]?.reason, "failure_rate");
        });
      },
    );

    await t.step(
      "slow-call rule: calls slower than slow_call_ms count as failures, results still returned",
      async () => {
        await using upstream = startUpstream();
        await withInstances(
          { up: { fail_max: 2, reset_timeout_ms: 60_000, slow_call_ms: 40 } },
          async (a, _b, events) => {
            upstream.mode = { status: 200, delayMs: 80 };
            assert.equal(await outcome(a.get("up").fetch(upstream.url)), "200");
            assert.equal(await outcome(a.get("up").fetch(upstream.url)), "200");
            await waitUntil(() => a.get("up").state === "open");
            assert.equal(events[0]?.reason, "consecutive_failures");
          },
        );
      },
    );

    await t.step(
      "slow-call rule: a call slow only because this process was stalled is not slow; a slow downstream still is",
      async () => {
        await withInstances(
          { up: { fail_max: 2, reset_timeout_ms: 60_000, slow_call_ms: 100 } },
          async (a) => {
            const up = a.get("up");
            // A 10 ms downstream while the event loop is blocked for 300 ms
            // (what a CPU-starved machine does): 300 ms wall, 10 ms net.
            const stalled = () =>
              up.call(async () => {
                await new Promise((r) => setTimeout(r, 10));
                block(300);
                return "ok";
              });
            for (let i = 0; i < 3; i++) assert.equal(await stalled(), "ok");
            // The same, while still running when slow_call_ms comes due.
            assert.equal(
              await up.call(async () => {
                block(300);
                await new Promise((r) => setTimeout(r, 10));
                return "ok";
              }),
              "ok",
            );
            await waitUntil(() => a.metrics.flushedOutcomes === 4);
            assert.equal((await a.list())[0]!.state, "closed");
            assert.equal((await a.list())[0]!.consecutiveFailures, 0);

            // A downstream that takes 300 ms with the loop free is slow.
            const slow = () => up.call(() => new Promise((r) => setTimeout(() => r("late"), 300)));
            assert.equal(await slow(), "late");
            assert.equal(await slow(), "late");
            await waitUntil(() => up.state === "open");
          },
        );
      },
    );

    await t.step("operator force-open, disable and reset reach every instance", async () => {
      await withInstances({ up: { fail_max: 1, reset_timeout_ms: 60_000 } }, async (a, b) => {
        const snap = await a.forceOpen("up");
        assert.equal(snap.state, "forced_open");
        await waitUntil(() => b.get("up").state === "forced_open");
        await assert.rejects(
          b.get("up").call(() => Promise.resolve(1)),
          (err: BreakerOpenError) => {
            assert.equal(err.retryAfterMs, null);
            assert.equal(err.state, "forced_open");
            return true;
          },
        );
        await b.disable("up");
        await waitUntil(() => a.get("up").state === "disabled");
        for (let i = 0; i < 5; i++) await a.get("up").call(failing).catch(() => {});
        assert.equal(await a.get("up").call(() => Promise.resolve(7)), 7);
        await new Promise((r) => setTimeout(r, 80));
        assert.equal((await b.list())[0]!.state, "disabled");
        await a.reset("up");
        await waitUntil(() => b.get("up").state === "closed");
        assert.equal((await a.reset("up")).state, "closed"); // idempotent
        await assert.rejects(() => a.reset("nope"), RangeError);
      });
    });

    await t.step("outcomes are reported in batches, not one round trip per call", async () => {
      await withInstances({ up: { fail_max: 5, reset_timeout_ms: 60_000 } }, async (a) => {
        const up = a.get("up");
        for (let round = 0; round < 10; round++) {
          await Promise.all(Array.from({ length: 100 }, () => up.call(() => Promise.resolve(1))));
        }
        await waitUntil(() => a.metrics.flushedOutcomes === 1000);
        assert.ok(a.metrics.flushes <= 10, `flushes: ${a.metrics.flushes}`);
      });
    });
  } finally {
    await stack.stop();
  }
});
