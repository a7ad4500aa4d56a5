/**
 * Errors of lead sourcing. Imports (CSV/JSON) fail with {@linkcode LeadImportError}
 * (an AppError the edge answers with 400/413). The Places client fails with
 * {@linkcode PlacesRequestError} when retrying cannot help (a bad key, an
 * invalid argument), which extends `PermanentTaskError` so that the queue
 * dead-letters the task at once, and with {@linkcode PlacesUnavailableError}
 * when it can (5xx, timeouts, network, throttling that outlasted the retries).
 *
 * Classify by `name` as well as `instanceof`: errors cross process boundaries.
 *
 * @module
 */
import { AppError, DependencyUnavailableError } from "../../errors.ts";
import { PermanentTaskError } from "../../queue/errors.ts";

/** Stable codes of {@linkcode LeadImportError}. */
export type LeadImportErrorCode = "invalid-csv" | "invalid-json" | "too-many-rows";

const IMPORT_STATUS: Record<LeadImportErrorCode, number> = {
  "invalid-csv": 400,
  "invalid-json": 400,
  "too-many-rows": 413,
};

/**
 * A whole import was refused: no or an invalid header, undecodable input, not
 * a JSON array, more rows than allowed. Single bad rows are not errors; they
 * are returned as rejections next to the good records.
 */
export class LeadImportError extends AppError {
  override name = "LeadImportError";
  constructor(
    code: LeadImportErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, IMPORT_STATUS[code], message, options);
  }
}

/** What the provider said about a refused request (Google's `{"error":{…}}` body). */
export interface ProviderError {
  /** HTTP status of the response. */
  httpStatus: number;
  /** Google's canonical status, e.g. "INVALID_ARGUMENT", "PERMISSION_DENIED"; null when absent. */
  status: string | null;
  /** The provider's message (or the start of a non-JSON body). */
  message: string;
}

/**
 * The Places API refused the request for a reason that retrying cannot fix
 * (400 INVALID_ARGUMENT, 403 PERMISSION_DENIED for a bad or restricted key,
 * 404). Carries the provider's own message; the task goes to the DLQ.
 */
export class PlacesRequestError extends PermanentTaskError {
  override name = "PlacesRequestError";
  /** Stable code for logs and DLQ listings. */
  readonly code = "places-request-rejected";
  readonly provider: ProviderError;
  constructor(provider: ProviderError, options: { cause?: unknown } = {}) {
    super(
      `Places API refused the request with ${provider.httpStatus}${
        provider.status ? ` ${provider.status}` : ""
      }: ${provider.message}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.provider = provider;
  }
}

/**
 * The Places API could not be reached or answered with a retriable failure
 * (5xx, timeout, network error, malformed 200, 429 beyond the retries). The
 * original failure is the `cause`; the queue retries the task with backoff.
 */
export class PlacesUnavailableError extends DependencyUnavailableError {
  override name = "PlacesUnavailableError";
  constructor(
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, { cause: options.cause, details: { provider: "places", ...options.details } });
  }
}
