/**
 * The return codes of every Lua script, named. Scripts return small integers
 * (their `--[[ … ]]` headers list them); the TypeScript that reads a reply
 * compares against these names, never against bare numbers. The test beside
 * this module checks that each script's header documents each code listed
 * here, so the two cannot drift apart silently.
 *
 * @module
 */

/** Script file (from the repository root) → its codes by name. */
export const SCRIPT_CODES = {
  /** One code per acknowledged task. */
  ack: {
    file: "shared/redis/scripts/ack.lua",
    codes: { completed: 1, staleLease: -1 },
  },
  /** One code per failure report. */
  fail: {
    file: "shared/redis/scripts/fail.lua",
    codes: { retryScheduled: 1, deadLettered: 2, deadLetteredAndEvicted: 3, staleLease: -1 },
  },
  /** One code per released task. */
  release: {
    file: "shared/redis/scripts/release.lua",
    codes: { released: 1, staleLease: -1 },
  },
  /** One code per renewed lease. */
  extendLeases: {
    file: "shared/redis/scripts/extend_leases.lua",
    codes: { renewed: 1, leaseLost: -1 },
  },
  /** One code per dead letter replayed. */
  dlqReplay: {
    file: "shared/redis/scripts/dlq_replay.lua",
    codes: { replayed: 1, notInDlq: 0 },
  },
  /** One code per dead letter purged. */
  dlqPurge: {
    file: "shared/redis/scripts/dlq_purge.lua",
    codes: { purged: 1, notInDlq: 0 },
  },
  /** The `created` flag of each enqueued task. */
  enqueue: {
    file: "shared/redis/scripts/enqueue.lua",
    codes: { created: 1, existing: 0 },
  },
  /** First element of the reply. */
  enqueueSlot: {
    file: "shared/redis/scripts/enqueue_slot.lua",
    codes: { enqueued: 1, slotTaken: 0 },
  },
  /** First element of the reply. */
  wsPublish: {
    file: "shared/redis/scripts/ws_publish.lua",
    codes: { published: 1, duplicate: 0 },
  },
  /** First element of the reply. */
  breakerAcquireProbe: {
    file: "shared/breakers/scripts/acquire_probe.lua",
    codes: { granted: 1, notNeeded: 2, refused: 0 },
  },
  /** First element of the reply. */
  breakerOperate: {
    file: "shared/breakers/scripts/operate.lua",
    codes: { changed: 1, unchanged: 0, unknownAction: -1 },
  },
  /** First element of the reply. */
  breakerReport: {
    file: "shared/breakers/scripts/report.lua",
    codes: { counted: 1, tripped: 2, notCounted: 0 },
  },
  /** First element of the reply. */
  breakerEndProbe: {
    file: "shared/breakers/scripts/end_probe.lua",
    codes: { recorded: 1, staleToken: 0 },
  },
  /** First element of the reply. */
  idempotencyClaim: {
    file: "edge/idempotency/claim_key.lua",
    codes: { claimed: 1, completed: 2, inFlight: -1, fingerprintMismatch: -2, unreplayable: -3 },
  },
  /** First element of the reply (the claim's codes, plus `stored`). */
  idempotencyEnqueue: {
    file: "edge/idempotency/enqueue_keyed.lua",
    codes: {
      stored: 3,
      claimed: 1,
      completed: 2,
      inFlight: -1,
      fingerprintMismatch: -2,
      unreplayable: -3,
    },
  },
  /** Read-only: the claim's codes, or `free`. */
  idempotencyPeek: {
    file: "edge/idempotency/peek_key.lua",
    codes: { free: 0, completed: 2, inFlight: -1, fingerprintMismatch: -2, unreplayable: -3 },
  },
  idempotencyComplete: {
    file: "edge/idempotency/complete_key.lua",
    codes: { stored: 1, claimLost: -1 },
  },
  idempotencyExtend: {
    file: "edge/idempotency/extend_lock.lua",
    codes: { renewed: 1, claimLost: -1 },
  },
  idempotencyRelease: {
    file: "edge/idempotency/release_key.lua",
    codes: { released: 1, claimLost: -1 },
  },
  idempotencySeal: {
    file: "edge/idempotency/seal_key.lua",
    codes: { sealed: 1, claimLost: -1 },
  },
  /** First element of the reply. */
  leadEventsRelay: {
    file: "edge/ws/lead_events_relay.lua",
    codes: { held: 1, taken: 2, heldByAnother: 0 },
  },
  /** First element of the reply. */
  rateLimitLease: {
    file: "shared/redis/scripts/rate_limit_lease.lua",
    codes: { granted: 1, exhausted: 0, returned: 2 },
  },
} as const;

// Short names for the readers of the replies.
export const ACK = SCRIPT_CODES.ack.codes;
export const FAIL = SCRIPT_CODES.fail.codes;
export const RELEASE = SCRIPT_CODES.release.codes;
export const EXTEND_LEASES = SCRIPT_CODES.extendLeases.codes;
export const DLQ_REPLAY = SCRIPT_CODES.dlqReplay.codes;
export const DLQ_PURGE = SCRIPT_CODES.dlqPurge.codes;
export const ENQUEUE = SCRIPT_CODES.enqueue.codes;
export const ENQUEUE_SLOT = SCRIPT_CODES.enqueueSlot.codes;
export const WS_PUBLISH = SCRIPT_CODES.wsPublish.codes;
export const BREAKER_ACQUIRE_PROBE = SCRIPT_CODES.breakerAcquireProbe.codes;
export const BREAKER_OPERATE = SCRIPT_CODES.breakerOperate.codes;
export const BREAKER_REPORT = SCRIPT_CODES.breakerReport.codes;
export const BREAKER_END_PROBE = SCRIPT_CODES.breakerEndProbe.codes;
export const IDEMPOTENCY_CLAIM = SCRIPT_CODES.idempotencyClaim.codes;
export const IDEMPOTENCY_ENQUEUE = SCRIPT_CODES.idempotencyEnqueue.codes;
export const IDEMPOTENCY_PEEK = SCRIPT_CODES.idempotencyPeek.codes;
export const IDEMPOTENCY_COMPLETE = SCRIPT_CODES.idempotencyComplete.codes;
export const IDEMPOTENCY_EXTEND = SCRIPT_CODES.idempotencyExtend.codes;
export const IDEMPOTENCY_RELEASE = SCRIPT_CODES.idempotencyRelease.codes;
export const IDEMPOTENCY_SEAL = SCRIPT_CODES.idempotencySeal.codes;
export const LEAD_EVENTS_RELAY = SCRIPT_CODES.leadEventsRelay.codes;
export const RATE_LIMIT_LEASE = SCRIPT_CODES.rateLimitLease.codes;
