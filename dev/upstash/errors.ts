/**
 * Errors of the Upstash REST bridge. Each carries the HTTP status it maps to,
 * so the router turns any of them into `{"error": message}` with that status.
 *
 * @module
 */

/** A request the bridge refuses before touching Redis (bad body, refused command, bad path). */
export class BridgeRequestError extends Error {
  override name = "BridgeRequestError";
  /** HTTP status of the answer. */
  readonly status: 400 | 404 | 413;

  constructor(message: string, options?: ErrorOptions & { status?: 400 | 404 | 413 }) {
    super(message, options);
    this.status = options?.status ?? 400;
  }
}

/** Redis cannot be reached; answered with 503 so clients see a JSON error, not a hang. */
export class RedisUnavailableError extends Error {
  override name = "RedisUnavailableError";
  /** HTTP status of the answer. */
  readonly status = 503;
}

/** The bridge could not start (the port is taken, Redis options are invalid). */
export class BridgeStartError extends Error {
  override name = "BridgeStartError";
}
