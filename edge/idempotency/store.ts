/**
 * The Redis side of HTTP idempotency: where a key's record lives and the
 * fenced scripts that change it (claim, complete, extend, release, seal; and
 * for `POST /v1/tasks` the claim, the enqueue and the stored answer in one,
 * enqueue_keyed.lua). Each state change is ONE script call (EVALSHA, EVAL on
 * NOSCRIPT via `createScript`).
 *
 * Record layout, one hash per scoped key, `<namespace>:http_idem:<sha256>`
 * (`<namespace>:{q}:http_idem:<sha256>` for `POST /v1/tasks`, in the queue's slot):
 * `state` ("in_flight" | "done"), `fingerprint`, `token` (while in flight),
 * `scope` and `key` (diagnostics), and once done `status`, `headers`, `body`,
 * `body_encoding`, `task_id`. In flight the hash expires with the lock; done,
 * it expires after the replay TTL.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { sha256Hex } from "../../shared/hash.ts";
import { httpIdempotencyKeys } from "../../shared/redis/keys.ts";
import { bindScript } from "../../shared/redis/scripts.ts";
import claimKey from "./claim_key.lua" with { type: "text" };
import completeKey from "./complete_key.lua" with { type: "text" };
import enqueueKeyed from "./enqueue_keyed.lua" with { type: "text" };
import extendLock from "./extend_lock.lua" with { type: "text" };
import peekKey from "./peek_key.lua" with { type: "text" };
import releaseKey from "./release_key.lua" with { type: "text" };
import {
  IDEMPOTENCY_CLAIM,
  IDEMPOTENCY_COMPLETE,
  IDEMPOTENCY_ENQUEUE,
  IDEMPOTENCY_EXTEND,
  IDEMPOTENCY_PEEK,
  IDEMPOTENCY_RELEASE,
  IDEMPOTENCY_SEAL,
} from "../../shared/redis/script_codes.ts";
import sealKey from "./seal_key.lua" with { type: "text" };

/** Key builder for idempotency records (names come from shared/redis/keys.ts). */
export function idempotencyKeys(namespace = "pc") {
  const keys = httpIdempotencyKeys(namespace);
  return {
    /** The digest that names a scoped key's record (its key builder adds the prefix). */
    digest: (scope: string, key: string) => sha256Hex(JSON.stringify([scope, key])),
    record: async (scope: string, key: string) =>
      keys.record(await sha256Hex(JSON.stringify([scope, key]))),
  };
}

/** A response as stored for replay. */
export interface StoredResponse {
  status: number;
  /** Selected headers, lower-case names. */
  headers: [string, string][];
  body: Uint8Array;
  /** Task the response handed off to the queue, if any. */
  taskId: string | null;
}

/** What a claim attempt found. */
export type ClaimOutcome =
  | { kind: "claimed" }
  | { kind: "in_flight"; lockLeftMs: number }
  | { kind: "mismatch" }
  | { kind: "completed"; response: StoredResponse }
  /** Done, but its response was too large to store: never replayed, never run again. */
  | { kind: "unreplayable"; status: number };

/** A claim outcome other than "claimed": what a retry is answered. */
export type KeyTaken = Exclude<ClaimOutcome, { kind: "claimed" }>;

/** What enqueue_keyed.lua did ({@linkcode IdempotencyStore.enqueueKeyed}). */
export type KeyedEnqueueOutcome =
  /** Enqueued `taskId` and stored the answer: nothing left to do. */
  | { kind: "stored"; taskId: string }
  /** The queue's key already named `taskId`: the record is claimed; complete it as usual. */
  | { kind: "claimed"; taskId: string }
  | KeyTaken;

/** What {@linkcode IdempotencyStore.claim} needs besides the record key. */
export interface ClaimRequest {
  fingerprint: string;
  /** Random per request; fences every later change. */
  token: string;
  lockTtlMs: number;
  scope: string;
  key: string;
}

/** Typed access to the idempotency scripts. Booleans are false when the claim was lost. */
export interface IdempotencyStore {
  claim(recordKey: string, request: ClaimRequest): Promise<ClaimOutcome>;
  /**
   * Claim, enqueue and the stored answer in ONE script (enqueue_keyed.lua);
   * `recordKey` must be in the queue's slot and `enqueue` is the queue's
   * enqueue.lua call for exactly one task (shared/queue/queue.ts `enqueueCall`).
   */
  enqueueKeyed(
    recordKey: string,
    request: ClaimRequest,
    enqueue: { keys: string[]; args: (string | number)[] },
    ttlMs: number,
    response: Omit<StoredResponse, "taskId">,
  ): Promise<KeyedEnqueueOutcome>;
  /** Read-only: what a claim would find (peek_key.lua); null when the key is free. */
  peek(recordKey: string, fingerprint: string): Promise<KeyTaken | null>;
  complete(
    recordKey: string,
    token: string,
    ttlMs: number,
    response: StoredResponse,
  ): Promise<boolean>;
  extend(recordKey: string, token: string, lockTtlMs: number): Promise<boolean>;
  release(recordKey: string, token: string): Promise<boolean>;
  /** Ends the lock as "done, not replayable" (seal_key.lua); false when the claim was lost. */
  seal(recordKey: string, token: string, ttlMs: number, status: number): Promise<boolean>;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

// The Upstash REST protocol carries arguments as JSON strings, so bytes that
// are not valid UTF-8 would be mangled: those bodies travel as base64.
function encodeBody(body: Uint8Array): [string, "utf8" | "base64"] {
  try {
    return [utf8.decode(body), "utf8"];
  } catch {
    return [body.toBase64(), "base64"];
  }
}

function decodeBody(text: string, encoding: string): Uint8Array {
  return encoding === "base64" ? Uint8Array.fromBase64(text) : new TextEncoder().encode(text);
}

/**
 * A reply that found the key taken; the codes are claim_key.lua's, which
 * enqueue_keyed.lua and peek_key.lua share (includes/http_idempotency.lua).
 */
function keyTaken(out: unknown[], what: string): KeyTaken {
  switch (Number(out[0])) {
    case IDEMPOTENCY_CLAIM.inFlight:
      return { kind: "in_flight", lockLeftMs: Math.max(0, Number(out[1])) };
    case IDEMPOTENCY_CLAIM.fingerprintMismatch:
      return { kind: "mismatch" };
    case IDEMPOTENCY_CLAIM.unreplayable:
      return { kind: "unreplayable", status: Number(out[1]) };
    case IDEMPOTENCY_CLAIM.completed:
      return {
        kind: "completed",
        response: {
          status: Number(out[1]),
          headers: JSON.parse(String(out[2])) as [string, string][],
          body: decodeBody(String(out[3] ?? ""), String(out[4])),
          taskId: out[5] ? String(out[5]) : null,
        },
      };
  }
  throw new Error(`Unexpected idempotency ${what} reply: ${JSON.stringify(out[0])}`);
}

// These scripts belong to the edge alone, so they live beside it and are bound
// here with the shared EVALSHA/NOSCRIPT binder rather than in the queue's table.
function bind(redis: Redis, source: string, name: string) {
  const script = bindScript(redis, source, { name });
  return (keys: string[], args: (string | number)[]) => script.run(keys, args);
}

/** Binds the idempotency scripts to a Redis client (raw-string results, see shared/deps.ts). */
export function createIdempotencyStore(redis: Redis): IdempotencyStore {
  const scripts = {
    claim: bind(redis, claimKey, "idempotency_claim"),
    enqueueKeyed: bind(redis, enqueueKeyed, "idempotency_enqueue"),
    peek: bind(redis, peekKey, "idempotency_peek"),
    complete: bind(redis, completeKey, "idempotency_complete"),
    extend: bind(redis, extendLock, "idempotency_extend"),
    release: bind(redis, releaseKey, "idempotency_release"),
    seal: bind(redis, sealKey, "idempotency_seal"),
  };
  return {
    async claim(recordKey, r) {
      const out = await scripts.claim([recordKey], [
        r.fingerprint,
        r.token,
        r.lockTtlMs,
        r.scope,
        r.key,
      ]) as unknown[];
      if (Number(out[0]) === IDEMPOTENCY_CLAIM.claimed) return { kind: "claimed" };
      return keyTaken(out, "claim");
    },
    async enqueueKeyed(recordKey, r, enqueue, ttlMs, response) {
      const [body, encoding] = encodeBody(response.body);
      const out = await scripts.enqueueKeyed([...enqueue.keys, recordKey], [
        ...enqueue.args,
        r.fingerprint,
        r.token,
        r.lockTtlMs,
        r.scope,
        r.key,
        ttlMs,
        response.status,
        JSON.stringify(response.headers),
        body,
        encoding,
      ]) as unknown[];
      switch (Number(out[0])) {
        case IDEMPOTENCY_ENQUEUE.stored:
          return { kind: "stored", taskId: String(out[1]) };
        case IDEMPOTENCY_ENQUEUE.claimed:
          return { kind: "claimed", taskId: String(out[1]) };
      }
      return keyTaken(out, "keyed enqueue");
    },
    async peek(recordKey, fingerprint) {
      const out = await scripts.peek([recordKey], [fingerprint]) as unknown[];
      return Number(out[0]) === IDEMPOTENCY_PEEK.free ? null : keyTaken(out, "peek");
    },
    async complete(recordKey, token, ttlMs, response) {
      const [body, encoding] = encodeBody(response.body);
      const out = await scripts.complete([recordKey], [
        token,
        ttlMs,
        response.status,
        JSON.stringify(response.headers),
        body,
        encoding,
        response.taskId ?? "",
      ]);
      return Number(out) === IDEMPOTENCY_COMPLETE.stored;
    },
    async extend(recordKey, token, lockTtlMs) {
      return Number(await scripts.extend([recordKey], [token, lockTtlMs])) ===
        IDEMPOTENCY_EXTEND.renewed;
    },
    async release(recordKey, token) {
      return Number(await scripts.release([recordKey], [token])) === IDEMPOTENCY_RELEASE.released;
    },
    async seal(recordKey, token, ttlMs, status) {
      return Number(await scripts.seal([recordKey], [token, ttlMs, status])) ===
        IDEMPOTENCY_SEAL.sealed;
    },
  };
}
