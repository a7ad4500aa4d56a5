/**
 * The Lua script table. Each state change of the queue is ONE script call,
 * sent as EVALSHA with a fallback to EVAL on NOSCRIPT (what `createScript`
 * does), which also makes scripts survive a Redis restart or SCRIPT FLUSH.
 *
 * Redis scripts cannot call each other, so shared Lua lives in
 * `scripts/includes/*.lua` and is inlined at load time where a script says
 * `-- @include "name"` (BullMQ's approach).
 *
 * @module
 */
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Redis } from "@upstash/redis";
import type { ScriptCall, TcpScriptTransport } from "./tcp_scripts.ts";
import nowMs from "./scripts/includes/now_ms.lua" with { type: "text" };
import deadLetter from "./scripts/includes/dead_letter.lua" with { type: "text" };
import deadLetterAlert from "./scripts/includes/dead_letter_alert.lua" with { type: "text" };
import feed from "./scripts/includes/feed.lua" with { type: "text" };
import isoTime from "./scripts/includes/iso_time.lua" with { type: "text" };
import streamId from "./scripts/includes/stream_id.lua" with { type: "text" };
import taskEvents from "./scripts/includes/task_events.lua" with { type: "text" };
import httpIdempotency from "./scripts/includes/http_idempotency.lua" with { type: "text" };
import enqueue from "./scripts/enqueue.lua" with { type: "text" };
import claim from "./scripts/claim.lua" with { type: "text" };
import ack from "./scripts/ack.lua" with { type: "text" };
import fail from "./scripts/fail.lua" with { type: "text" };
import extendLeases from "./scripts/extend_leases.lua" with { type: "text" };
import release from "./scripts/release.lua" with { type: "text" };
import dlqReplay from "./scripts/dlq_replay.lua" with { type: "text" };
import dlqPurge from "./scripts/dlq_purge.lua" with { type: "text" };
import dlqExpire from "./scripts/dlq_expire.lua" with { type: "text" };
import enqueueSlot from "./scripts/enqueue_slot.lua" with { type: "text" };
import listTasks from "./scripts/list_tasks.lua" with { type: "text" };

/**
 * `enqueue_script` is the whole of enqueue.lua: enqueue_slot.lua (and the
 * edge's enqueue_keyed.lua) wrap it in a function (`KEYS`/`ARGV` become its
 * parameters), so a scheduled task is written by exactly the code that writes
 * every other task. `http_idempotency` is the Idempotency-Key record's
 * outcome and claim, shared by the edge's claim_key.lua and enqueue_keyed.lua.
 */
const INCLUDES: Record<string, string> = {
  now_ms: nowMs,
  dead_letter: deadLetter,
  dead_letter_alert: deadLetterAlert,
  feed,
  iso_time: isoTime,
  stream_id: streamId,
  task_events: taskEvents,
  enqueue_script: enqueue,
  http_idempotency: httpIdempotency,
};

/**
 * Inlines `-- @include "name"` lines, also inside included text (at most a
 * few levels deep); unknown names are a programming error.
 */
export function resolveIncludes(source: string): string {
  const resolve = (text: string, depth: number): string =>
    text.replace(/^-- @include "([a-z_]+)"$/gm, (_, name: string) => {
      const body = INCLUDES[name];
      if (body === undefined) throw new Error(`Unknown Lua include "${name}"`);
      if (depth >= 5) throw new Error(`Lua include "${name}" is nested more than 5 levels deep`);
      return resolve(body.trimEnd(), depth + 1);
    });
  return resolve(source, 0);
}

const SOURCES = {
  enqueue,
  claim,
  ack,
  fail,
  extendLeases,
  release,
  dlqReplay,
  dlqPurge,
  dlqExpire,
  enqueueSlot,
  // Read-only: one page of a queue index (GET /v1/tasks), in one call.
  listTasks,
} as const;

/** Script names. */
export type ScriptName = keyof typeof SOURCES;

/** A loaded script: `run(keys, args)` is one EVALSHA (EVAL on NOSCRIPT). */
export interface LoadedScript {
  run<T = unknown>(keys: string[], args: (string | number)[]): Promise<T>;
}

/**
 * Binds one script source (after include resolution) to a client; for
 * scripts that belong to one component (e.g. edge/idempotency/*.lua).
 *
 * The SDK's script object starts hashing its source (an async WebCrypto
 * digest) the moment it is created, so it is created at the first `run`:
 * building an app or a queue starts no async work of its own (Deno's op
 * sanitizer saw that digest still pending after tests that never ran one).
 */
export function bindScript(
  redis: Redis | TcpScriptTransport,
  source: string,
  options: { name?: string } = {},
): LoadedScript {
  const text = resolveIncludes(source);
  const name = options.name ?? "script";
  const tracer = trace.getTracer("pleasant-cove-redis");
  const attributes = {
    "db.system": "redis",
    "db.operation.name": "EVALSHA",
    "db.redis.script": name,
  };
  let call: ScriptCall | undefined;
  const bind = (): ScriptCall => {
    if ("kind" in redis) return redis.script(text);
    const script = redis.createScript(text);
    return (keys, args) => script.exec(keys, args);
  };
  return {
    // One CLIENT span per call, named by script (the REST request itself
    // would only show as an anonymous POST, possibly shared by a pipeline).
    run: <T>(keys: string[], args: (string | number)[]) =>
      tracer.startActiveSpan(`redis ${name}`, { kind: SpanKind.CLIENT, attributes }, (span) => {
        call ??= bind();
        return (call(keys, args.map(String)) as Promise<T>).then(
          (value) => {
            span.end();
            return value;
          },
          (err) => {
            span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error)?.name });
            span.end();
            throw err;
          },
        );
      }),
  };
}

/** Binds every script to a Redis client (REST) or a TCP transport (workers: docs/queue.md). */
export function loadScripts(redis: Redis | TcpScriptTransport): Record<ScriptName, LoadedScript> {
  const out = {} as Record<ScriptName, LoadedScript>;
  for (const [name, source] of Object.entries(SOURCES) as [ScriptName, string][]) {
    out[name] = bindScript(redis, source, { name });
  }
  return out;
}
