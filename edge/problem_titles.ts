/**
 * The problem catalog: every `code` a problem+json body can carry, with its
 * one fixed `title` (RFC 9457 §3.1.3: the title does not change from
 * occurrence to occurrence; what is specific to one goes to `detail`).
 * edge/problem.ts takes every title from here. edge/problem_titles_test.ts
 * walks the code base for the codes it emits and fails on one missing here,
 * or on an entry nothing emits.
 *
 * @module
 */

/** Code → title, grouped by where the problem comes from. */
export const PROBLEM_TITLES: Readonly<Record<string, string>> = {
  // The perimeter: routing, authentication, authorization, bodies, limits.
  "not-found": "Not found",
  "method-not-allowed": "Method not allowed",
  "missing-token": "Authentication required",
  "invalid-token": "Invalid token",
  "forbidden": "Forbidden",
  "invalid-request": "The request is invalid",
  "bad-request": "Bad request",
  "http-error": "The request was refused",
  "unsupported-media-type": "Unsupported content type",
  "payload-too-large": "Request body too large",
  "json-too-deep": "JSON nested too deeply",
  "request-body-unreadable": "The request body could not be read",
  "quota-exceeded": "Too many requests",
  "rate-limit-unavailable": "Rate limiting is unavailable",
  "idempotency-key-required": "Idempotency-Key required",
  "invalid-idempotency-key": "Invalid Idempotency-Key",
  "idempotency-key-reused": "Idempotency-Key reused",
  "idempotency-request-in-progress": "Request in progress",
  "idempotency-response-not-replayable": "Response not replayable",
  "internal": "Internal server error",
  "not-ready": "Service not ready",
  // Dependencies and breakers.
  "dependency-unavailable": "Dependency temporarily unavailable",
  "downstream-unavailable": "Downstream temporarily unavailable",
  "breaker-open": "Circuit breaker open",
  "breaker-throttled": "Downstream throttling",
  "breaker-timeout": "Downstream timed out",
  "breaker-not-found": "No such breaker",
  "upstream-timeout": "Upstream timed out",
  "upstream-unreachable": "Upstream unreachable",
  // Leads.
  "lead-not-found": "No such lead",
  "lead-exists": "The lead already exists",
  "illegal-transition": "Illegal status transition",
  "lead-not-interested": "The lead is not interested",
  "lead-not-closed": "The lead is not closed",
  "lead-has-no-email": "No recipient address",
  "invalid-cursor": "Invalid cursor",
  // Outreach and appointments.
  "recipient-suppressed": "The recipient unsubscribed",
  "suppression-not-found": "The address is not on the suppression list",
  "email-not-found": "No such email",
  "template-not-found": "No such email template",
  "unknown-template": "Unknown email template",
  "missing-template-variables": "Missing template variables",
  "invalid-template-variables": "Invalid template variables",
  "email-provider-config": "Invalid email provider settings",
  "invalid-unsubscribe-token": "Invalid unsubscribe link",
  "appointment-exists": "The lead already has a meeting that day",
  "time-in-past": "The appointment would start in the past",
  "appointment-not-found": "No such appointment",
  "appointment-cancelled": "The appointment is cancelled",
  "places-not-configured": "Lead search is not configured",
  // Tasks and the dead-letter queue.
  "task-not-found": "No such task",
  "dead-task-not-found": "No such task in the dead-letter queue",
  "unknown-task-type": "Unknown task type",
  "invalid-task-payload": "Invalid task payload",
  "task-payload-too-large": "Task payload too large",
  "task-type-forbidden": "Task type forbidden",
  "task-type-not-public": "Task type cannot be enqueued here",
  // Analytics and models.
  "invalid-range": "Invalid time range",
  "model-not-found": "No such model",
  "model-not-activatable": "The model cannot be activated",
  "no-previous-champion": "There is no previous champion",
  // The live feed.
  "unknown-topic": "Unknown topic",
  "unknown-event-type": "Unknown event type",
  "upgrade-required": "Upgrade required",
  "too-many-upgrades": "Too many live-feed connection attempts",
  "too-many-sockets": "Too many live-feed connections",
  "live-feed-full": "Live feed full",
};

/**
 * The catalog title of `code`. A code missing from the catalog (the test
 * prevents it) gets a neutral title rather than the caller's prose.
 */
export function problemTitle(code: string): string {
  return Object.hasOwn(PROBLEM_TITLES, code) ? PROBLEM_TITLES[code]! : "Request failed";
}
