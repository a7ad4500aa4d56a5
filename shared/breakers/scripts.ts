/**
 * The breaker's Lua scripts, bound to one client, and the parser of their
 * common reply. Each transition is one script call (EVALSHA, EVAL on
 * NOSCRIPT, via `bindScript`).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { bindScript } from "../redis/scripts.ts";
import breakerState from "./scripts/includes/breaker_state.lua" with { type: "text" };
import reportSrc from "./scripts/report.lua" with { type: "text" };
import acquireSrc from "./scripts/acquire_probe.lua" with { type: "text" };
import endProbeSrc from "./scripts/end_probe.lua" with { type: "text" };
import operateSrc from "./scripts/operate.lua" with { type: "text" };
import readSrc from "./scripts/read.lua" with { type: "text" };
import type { OutcomeBatch } from "./batch.ts";
import { type BreakerPolicy, bucketMs } from "./policy.ts";
import type { BreakerKeys } from "./keys.ts";
import { BREAKER_STATES, type BreakerStateName } from "./types.ts";

/**
 * Inlines this module's own include first: shared/redis/scripts.ts knows only
 * the platform's includes (now_ms, dead_letter) and rejects other names.
 * The breaker include is inlined here: only breaker scripts use it.
 */
function withBreakerIncludes(source: string): string {
  return source.replace(/^-- @include "breaker_state"$/m, () => breakerState.trimEnd());
}

/** The shared state as one script reports it (durations relative to Redis's clock). */
export interface SharedState {
  /** Script status code (see each script's header). */
  code: number;
  state: BreakerStateName;
  epoch: number;
  /** -1 outside OPEN. */
  openRemainingMs: number;
  /** -1 when no live probe lease. */
  probeRemainingMs: number;
  consecutive: number;
  reason: string | null;
  by: string | null;
  trips: number;
}

/** Parses the common script reply; throws a TypeError on anything else. */
export function parseReply(reply: unknown): SharedState {
  if (!Array.isArray(reply) || reply.length < 9) {
    throw new TypeError(`Unexpected breaker script reply: ${JSON.stringify(reply)}`);
  }
  const state = String(reply[1]) as BreakerStateName;
  if (!BREAKER_STATES.includes(state)) {
    throw new TypeError(`Unexpected breaker state in script reply: ${JSON.stringify(reply[1])}`);
  }
  const text = (v: unknown) => (v === null || v === undefined || v === "" ? null : String(v));
  return {
    code: Number(reply[0]),
    state,
    epoch: Number(reply[2]),
    openRemainingMs: Number(reply[3]),
    probeRemainingMs: Number(reply[4]),
    consecutive: Number(reply[5]),
    reason: text(reply[6]),
    by: text(reply[7]),
    trips: Number(reply[8]),
  };
}

/** Probe outcomes end_probe.lua accepts. */
export type ProbeOutcome = "success" | "failure" | "release";

/** Typed wrappers around the breaker scripts of one namespace. */
export interface BreakerScripts {
  report(
    name: string,
    policy: BreakerPolicy,
    epoch: number,
    batch: OutcomeBatch | null,
    options: { adoptOpenMs?: number },
  ): Promise<SharedState>;
  acquireProbe(name: string, token: string, leaseMs: number): Promise<SharedState>;
  endProbe(
    name: string,
    policy: BreakerPolicy,
    token: string,
    outcome: ProbeOutcome,
  ): Promise<SharedState>;
  operate(
    name: string,
    action: "reset" | "force_open" | "disable" | "half_open",
  ): Promise<SharedState>;
  read(name: string): Promise<SharedState>;
}

/** Binds the breaker scripts to `redis` for `keys`, acting as `instanceId`. */
export function bindBreakerScripts(
  redis: Redis,
  keys: BreakerKeys,
  instanceId: string,
): BreakerScripts {
  const report = bindScript(redis, withBreakerIncludes(reportSrc), { name: "breaker_report" });
  const acquire = bindScript(redis, withBreakerIncludes(acquireSrc), { name: "breaker_acquire" });
  const endProbe = bindScript(redis, withBreakerIncludes(endProbeSrc), {
    name: "breaker_endProbe",
  });
  const operate = bindScript(redis, withBreakerIncludes(operateSrc), { name: "breaker_operate" });
  const read = bindScript(redis, withBreakerIncludes(readSrc), { name: "breaker_read" });
  const both = (name: string) => [keys.state(name), keys.window(name)];
  return {
    async report(name, policy, epoch, batch, options) {
      const rate = policy.failure_rate;
      return parseReply(
        await report.run(both(name), [
          name,
          epoch,
          batch?.successes ?? 0,
          batch?.failures ?? 0,
          batch?.lead ?? 0,
          batch?.maxRun ?? 0,
          batch?.tail ?? 0,
          policy.fail_max,
          rate?.threshold_pct ?? 0,
          rate?.min_calls ?? 0,
          rate?.window_ms ?? 0,
          rate ? bucketMs(rate) : 1,
          policy.reset_timeout_ms,
          keys.channel,
          instanceId,
          options.adoptOpenMs ?? -1,
        ]),
      );
    },
    async acquireProbe(name, token, leaseMs) {
      return parseReply(
        await acquire.run(both(name), [name, token, leaseMs, keys.channel, instanceId]),
      );
    },
    async endProbe(name, policy, token, outcome) {
      return parseReply(
        await endProbe.run(both(name), [
          name,
          token,
          outcome,
          policy.success_threshold,
          policy.reset_timeout_ms,
          keys.channel,
          instanceId,
        ]),
      );
    },
    async operate(name, action) {
      return parseReply(await operate.run(both(name), [name, action, keys.channel, instanceId]));
    },
    async read(name) {
      return parseReply(await read.run([keys.state(name)], []));
    },
  };
}
