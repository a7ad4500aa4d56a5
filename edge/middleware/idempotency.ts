/**
 * `Idempotency-Key` for POST and PATCH: Stripe's behaviour with the IETF
 * draft's status codes (draft-ietf-httpapi-idempotency-key-header).
 *
 * - The key is scoped by principal + route (+ method), so keys of different
 *   callers never meet, and is bound to a fingerprint of the request (method,
 *   path, canonical body): the same key with another request is a 422.
 * - The first request claims the key in one script call; a retry while it
 *   runs gets 409 with `Retry-After`. The claim is a lock that a heartbeat
 *   renews; if the instance dies, the lock lapses and a retry runs again.
 * - What the request produced is stored for `ttlMs` and replayed with
 *   `Idempotency-Replayed: true`: success or error, 5xx included (Stripe:
 *   once execution began, the result is the result). Not stored, so that a
 *   retry runs again: errors the handler THROWS with a 4xx status (refused
 *   before it did anything: validation, preconditions; the handler contract
 *   is to throw those before side effects) and responses with 429 or 503
 *   (by definition "not processed, try later"; storing them would turn a
 *   short outage into 24 hours of replayed failures).
 * - A route whose effect can be one script with the record (`recordWithEffect`;
 *   `POST /v1/tasks`) is not claimed first: the route validates, then claims,
 *   acts and stores its answer in that one script (`c.var.idempotencyRecord`),
 *   so the key is never in flight; a request it refused before the script
 *   (thrown 4xx) is answered from the record when the key was already used.
 * - A 202 that handed work to the queue (a gateway route set
 *   `idempotencyTaskId`; never a `task_id` read from a body, which an
 *   upstream could write) replays as the task's current state.
 * - Responses are captured by stream-counting a clone up to
 *   `maxResponseBytes`; a larger one is passed through unstored and its key
 *   sealed as "not replayable": a retry gets 409
 *   `idempotency-response-not-replayable`, never a partial body and never a
 *   second execution.
 *
 * @example
 * ```ts
 * app.use("/v1/*", authenticate(deps), rateLimit(deps));
 * app.use("/v1/*", idempotency({ redis: deps.redis, ttlMs: deps.config.idempotencyTtlMs, queue }));
 * ```
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { ContentfulStatusCode, StatusCode } from "hono/utils/http-status";
import type { Redis } from "@upstash/redis";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { DependencyUnavailableError } from "../../shared/errors.ts";
import type { Logger } from "../../shared/log.ts";
import type { Principal } from "../auth/principal.ts";
import type { IdempotencyVariables } from "../app_env.ts";
import { problem } from "../problem.ts";
import { readingBody } from "../request_body.ts";
import { parseIdempotencyKey, readBodyCapped, requestFingerprint } from "../idempotency/request.ts";
import { captureResponse, DEFAULT_STORED_HEADERS, taskReplay } from "../idempotency/response.ts";
import {
  type ClaimOutcome,
  type ClaimRequest,
  createIdempotencyStore,
  idempotencyKeys,
  type KeyedEnqueueOutcome,
  type KeyTaken,
  type StoredResponse,
} from "../idempotency/store.ts";

export type { IdempotencyVariables };

/** What the middleware needs on the context: the principal (auth runs first) and a logger. */
export type IdempotencyEnv = {
  Variables: IdempotencyVariables & { principal?: Principal; log?: Logger };
};
type Env = IdempotencyEnv;

/** Options of {@linkcode idempotency}. */
export interface IdempotencyOptions {
  redis: Redis;
  /** How long a completed response is replayed (`Config.idempotencyTtlMs`). */
  ttlMs: number;
  /** Routes that must carry a key (400 without one). @default () => false */
  required?: (c: Context<IdempotencyEnv>) => boolean;
  /** Scope of a key. @default principal sub (or "anonymous") + method + route pattern */
  scope?: (c: Context<IdempotencyEnv>) => string;
  /** Lets a replayed 202 hand-off report the task's current status. */
  queue?: Pick<TaskQueue, "getTask">;
  /** In-flight lock; renewed every third of it while the request runs. @default 10_000 */
  lockTtlMs?: number;
  /** Largest body hashed (`Config.maxBodyBytes`); larger → 413. @default 1_048_576 */
  maxBodyBytes?: number;
  /**
   * Largest response stored for replay (`Config.perimeter.idempotencyMaxResponseBytes`);
   * a larger one passes through and its key is sealed as not replayable. @default 262_144
   */
  maxResponseBytes?: number;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Response headers stored and replayed. @default DEFAULT_STORED_HEADERS */
  storedHeaders?: readonly string[];
  /** Logger when the request has none on `c.var.log`. */
  log?: Logger;
  /**
   * Told each keyed request's claim outcome (`idempotency_outcomes_total`):
   * `claimed` (first run), `completed` (replayed), `in_flight`, `unreplayable`,
   * `mismatch` (key reused with another body). @default none
   */
  onOutcome?: (kind: ClaimOutcome["kind"]) => void;
  /**
   * Routes whose handler writes the key's record itself, in the same script as
   * its effect (`POST /v1/tasks`: enqueue_keyed.lua through
   * `c.var.idempotencyRecord`): returns the record key for a scoped key's
   * digest (in the effect's cluster slot), or null for the usual claim, run
   * and completion (three script calls). @default () => null
   */
  recordWithEffect?: (c: Context<IdempotencyEnv>) => ((digest: string) => string) | null;
}

function positiveInt(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) <= 0) {
    throw new RangeError(
      `Cannot create idempotency middleware as '${name}' must be a positive integer: current value is ${value}`,
    );
  }
  return value as number;
}

/** Default scope: who + method + route pattern (the handler's, not the middleware's). */
function defaultScope(c: Context<Env>): string {
  const routes = matchedRoutes(c);
  const route = routes.findLast((r) => r.method !== "ALL") ?? routes.at(-1);
  return `${c.get("principal")?.sub ?? "anonymous"} ${c.req.method} ${route?.path ?? c.req.path}`;
}

/** A thrown 4xx: the handler refused before executing (its contract, see the module doc). */
function thrown4xx(err: unknown): boolean {
  const status = (err as { status?: unknown } | undefined)?.status;
  return typeof status === "number" && status >= 400 && status < 500;
}

/** A thrown 4xx means the handler refused before executing; 429/503 mean "not processed". */
function notExecuted(res: Response, err: unknown): boolean {
  return res.status === 429 || res.status === 503 || thrown4xx(err);
}

async function orUnavailable<T>(what: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    // Fail closed: running a non-idempotent write unguarded is what the key is there to prevent.
    throw new DependencyUnavailableError(`Cannot ${what}: Redis request failed`, { cause: err });
  }
}

/** Builds the middleware; options are checked here, once. */
export function idempotency(options: IdempotencyOptions): MiddlewareHandler<Env> {
  if (typeof options?.redis?.createScript !== "function") {
    throw new TypeError("Cannot create idempotency middleware as 'redis' is not a Redis client");
  }
  const ttlMs = positiveInt("ttlMs", options.ttlMs);
  const lockTtlMs = positiveInt("lockTtlMs", options.lockTtlMs ?? 10_000);
  const maxBodyBytes = positiveInt("maxBodyBytes", options.maxBodyBytes ?? 1_048_576);
  const maxResponseBytes = positiveInt("maxResponseBytes", options.maxResponseBytes ?? 262_144);
  const required = options.required ?? (() => false);
  const scope = options.scope ?? defaultScope;
  const queue = options.queue;
  const storedHeaders = new Set(
    (options.storedHeaders ?? DEFAULT_STORED_HEADERS).map((h) => h.toLowerCase()),
  );
  const recordWithEffect = options.recordWithEffect ?? (() => null);
  const store = createIdempotencyStore(options.redis);
  const keys = idempotencyKeys(options.namespace);

  async function replay(c: Context<Env>, stored: StoredResponse): Promise<Response> {
    let out = stored;
    const taskId = stored.taskId;
    if (taskId !== null && queue !== undefined) {
      const task = await orUnavailable("read the queued task", () => queue.getTask(taskId));
      // A task already expired from the queue leaves the stored 202 as the best answer.
      if (task !== null) out = taskReplay(stored, task);
    }
    const headers: Record<string, string> = Object.fromEntries(out.headers);
    headers["Idempotency-Replayed"] = "true";
    // Null for an empty body: a 204 or 304 must not carry one.
    return out.body.byteLength > 0
      ? c.body(out.body.slice(), out.status as ContentfulStatusCode, headers)
      : c.body(null, out.status as StatusCode, headers);
  }

  /** Frees a claim whose request stored nothing (fenced: a lapsed claim is left alone). */
  function release(c: Context<Env>, recordKey: string, token: string): Promise<unknown> {
    return store.release(recordKey, token).catch((err) =>
      (c.get("log") ?? options.log)?.warn(
        "idempotency key not released; it frees itself when the lock lapses",
        { err },
      )
    );
  }

  async function execute(
    c: Context<Env>,
    next: () => Promise<void>,
    recordKey: string,
    token: string,
  ): Promise<void> {
    const log = c.get("log") ?? options.log;
    // Heartbeats are chained and awaited before completing, so none lands after the
    // completion (where it would find no token and report a lost lock).
    let beat = Promise.resolve();
    const timer = setInterval(() => {
      beat = beat.then(() => store.extend(recordKey, token, lockTtlMs)).then(
        (held) => void (held || log?.warn("idempotency lock lost while the request ran")),
        (err) => log?.warn("idempotency lock renewal failed", { err }),
      );
    }, Math.max(1, Math.floor(lockTtlMs / 3)));
    try {
      await next();
    } catch (err) {
      // Only without an onError in the chain: there is no response to store, so free the key.
      clearInterval(timer);
      await beat;
      await release(c, recordKey, token);
      throw err;
    }
    clearInterval(timer);
    await beat;
    await finish(c, recordKey, token);
  }

  /** After a claimed request ran: stores its response, or frees the key (see the module doc). */
  async function finish(c: Context<Env>, recordKey: string, token: string): Promise<void> {
    const log = c.get("log") ?? options.log;
    const res = c.res;
    // Streams (SSE) have no end to store; refused requests must be retryable.
    if (
      notExecuted(res, c.error) ||
      /^text\/event-stream/i.test(res.headers.get("content-type") ?? "")
    ) {
      await release(c, recordKey, token);
      return;
    }
    let stored: StoredResponse | null;
    try {
      stored = await captureResponse(
        res,
        c.get("idempotencyTaskId"),
        storedHeaders,
        maxResponseBytes,
      );
    } catch (err) {
      await release(c, recordKey, token);
      throw err;
    }
    if (stored === null) {
      // Too large to keep: the caller gets it now, a retry gets a clear 409.
      await store.seal(recordKey, token, ttlMs, res.status).catch((err) =>
        log?.warn("idempotency key not sealed; it frees itself when the lock lapses", { err })
      );
      log?.info("idempotent response too large to store", { status: res.status });
      return;
    }
    try {
      if (!await store.complete(recordKey, token, ttlMs, stored)) {
        log?.warn("idempotency lock lapsed before completion; response not stored", {
          status: stored.status,
        });
      }
    } catch (err) {
      // The response is real and is returned; the key stays in flight until its lock lapses.
      log?.error("idempotent response not stored", { err, status: stored.status });
    }
  }

  /** The answer to a request whose key is taken: a replay, 409 or 422. */
  async function answerTaken(c: Context<Env>, outcome: KeyTaken): Promise<Response> {
    switch (outcome.kind) {
      case "completed":
        return await replay(c, outcome.response);
      case "in_flight":
        // One second, not the lock's remaining time: the lock is renewed while the first request
        // runs, so it says nothing about when that request will finish.
        return problem(c, {
          code: "idempotency-request-in-progress",
          status: 409,
          title: "Request in progress",
          detail: "A request with this Idempotency-Key is still being processed; retry later",
        }, { "Retry-After": "1" });
      case "unreplayable":
        return problem(c, {
          code: "idempotency-response-not-replayable",
          status: 409,
          title: "Response not replayable",
          detail:
            `The request with this Idempotency-Key already ran (status ${outcome.status}); its response was too large to store, so it is not repeated and cannot be replayed. Read the resource's current state instead.`,
        });
      case "mismatch":
        return problem(c, {
          code: "idempotency-key-reused",
          status: 422,
          title: "Idempotency-Key reused",
          detail: "This Idempotency-Key was used for a different request (method, path or body)",
        });
    }
  }

  /**
   * A route that writes the record in its effect's script (`recordWithEffect`):
   * no claim before it runs. What it finds is answered as a claim's outcome
   * would be; a request it refused before its script ran (a thrown 4xx) is
   * answered by the record when the key is already taken, as if the claim had
   * come first (a reused key stays 422, a retry stays a replay).
   */
  async function withRecord(
    c: Context<Env>,
    next: () => Promise<void>,
    recordKey: string,
    claim: ClaimRequest,
  ): Promise<void> {
    let result: KeyedEnqueueOutcome | undefined;
    c.set("idempotencyRecord", {
      async enqueue(call, response) {
        const headers = response.headers.filter(([name]) => storedHeaders.has(name));
        result = await orUnavailable(
          "enqueue with the Idempotency-Key",
          () => store.enqueueKeyed(recordKey, claim, call, ttlMs, { ...response, headers }),
        );
        options.onOutcome?.(result.kind === "stored" ? "claimed" : result.kind);
        return result;
      },
      answer: (outcome) => answerTaken(c, outcome),
    });
    try {
      await next();
    } catch (err) {
      // Only without an onError in the chain.
      if (result?.kind === "claimed") await release(c, recordKey, claim.token);
      throw err;
    }
    if (result?.kind === "claimed") return await finish(c, recordKey, claim.token);
    if (result !== undefined || !thrown4xx(c.error)) return;
    const taken = await orUnavailable(
      "check the Idempotency-Key",
      () => store.peek(recordKey, claim.fingerprint),
    );
    if (taken === null) return;
    options.onOutcome?.(taken.kind);
    const answer = await answerTaken(c, taken);
    // Unset first: Hono's setter would copy the refusal's headers onto the answer.
    c.res = undefined as unknown as Response;
    c.res = answer;
  }

  return async function idempotency(c, next) {
    const method = c.req.method;
    if (method !== "POST" && method !== "PATCH") return await next();

    const header = c.req.header("Idempotency-Key");
    if (header === undefined) {
      if (!required(c)) return await next();
      return problem(c, {
        code: "idempotency-key-required",
        status: 400,
        title: "Idempotency-Key required",
        detail: `${method} ${c.req.path} requires an Idempotency-Key header`,
      });
    }
    const key = parseIdempotencyKey(header);
    if (key === null) {
      return problem(c, {
        code: "invalid-idempotency-key",
        status: 400,
        title: "Invalid Idempotency-Key",
        detail: "Idempotency-Key must be 1 to 255 printable ASCII characters (optionally quoted)",
      });
    }

    // An earlier middleware may have parsed the body already; Hono then serves it from its cache.
    const body = await readingBody(async () =>
      c.req.raw.bodyUsed
        ? new Uint8Array(await c.req.arrayBuffer())
        : await readBodyCapped(c.req.raw, maxBodyBytes)
    );
    if (body === null) {
      return problem(c, {
        code: "payload-too-large",
        status: 413,
        title: "Payload too large",
        detail: `Request bodies are limited to ${maxBodyBytes} bytes`,
      });
    }
    const url = new URL(c.req.url);
    const fingerprint = requestFingerprint(
      method,
      url.pathname + url.search,
      c.req.header("Content-Type"),
      body,
    );
    const scopeName = scope(c);
    const token = crypto.randomUUID();
    const claim = { fingerprint, token, lockTtlMs, scope: scopeName, key };
    const withEffect = recordWithEffect(c);
    if (withEffect !== null) {
      return await withRecord(c, next, withEffect(await keys.digest(scopeName, key)), claim);
    }
    const recordKey = await keys.record(scopeName, key);
    const outcome = await orUnavailable(
      "check the Idempotency-Key",
      () => store.claim(recordKey, claim),
    );
    options.onOutcome?.(outcome.kind);
    if (outcome.kind === "claimed") return await execute(c, next, recordKey, token);
    return await answerTaken(c, outcome);
  };
}
