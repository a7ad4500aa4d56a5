/**
 * The contract every email provider implements, and how their failures are
 * classified for the queue: `EmailPermanentError` dead-letters the task at
 * once (the message itself was refused), `EmailTransientError` lets the
 * runner retry with backoff (the provider was unavailable or throttling).
 *
 * @module
 */
import { AppError } from "../errors.ts";
import { PermanentTaskError } from "../queue/errors.ts";
import type { OutgoingEmail } from "./message.ts";

/** Per-send options. */
export interface SendOptions {
  /** The task's signal: aborting it gives up the send (as a transient failure). */
  signal?: AbortSignal;
}

/** What a provider reports for an accepted message. */
export interface SendResult {
  /** The provider's own id for the message, when it reports one. */
  providerMessageId?: string;
  /** The provider's answer, for the ledger and logs (e.g. `250 2.0.0 Ok: queued as 4Xk`). */
  response: string;
}

/** Something that delivers an `OutgoingEmail` (file, SMTP, HTTP API). */
export interface EmailProvider {
  /** Stable provider name for logs and the ledger, e.g. "smtp". */
  readonly name: string;
  /**
   * Sends `msg`. Resolves once the provider accepted it; rejects with
   * `EmailPermanentError` or `EmailTransientError`.
   */
  send(msg: OutgoingEmail, opts: SendOptions): Promise<SendResult>;
}

/** Details both error classes carry. */
export interface EmailErrorDetails {
  /** The provider's name. */
  provider: string;
  /** SMTP reply code or HTTP status, when the provider answered. */
  status?: number;
  cause?: unknown;
}

/**
 * The provider refused this message for good (SMTP 5xx, HTTP 4xx): retrying
 * cannot help. The `name` stays "PermanentTaskError" (inherited) so that the
 * queue recognises it by name too, after it crossed a process boundary.
 */
export class EmailPermanentError extends PermanentTaskError {
  /** Stable code for logs and the ledger. */
  readonly code = "email-rejected";
  readonly provider: string;
  readonly status: number | undefined;

  /** `message` is the provider's own text, kept verbatim for the ledger. */
  constructor(message: string, details: EmailErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.provider = details.provider;
    this.status = details.status;
  }
}

/** The send failed in a way a later attempt may not (4xx, 429, 5xx HTTP, network, timeout). */
export class EmailTransientError extends Error {
  override name = "EmailTransientError";
  /** Stable code for logs and the ledger. */
  readonly code = "email-unavailable";
  readonly provider: string;
  readonly status: number | undefined;
  /** How long the provider asked us to wait (Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: EmailErrorDetails & { retryAfterMs?: number }) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.provider = details.provider;
    this.status = details.status;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** A provider factory was given unusable settings (raised at start-up, not per send). */
export class EmailProviderConfigError extends AppError {
  override name = "EmailProviderConfigError";
  constructor(provider: string, problem: string) {
    super("email-provider-config", 500, `Invalid ${provider} email provider settings: ${problem}`, {
      details: { provider },
    });
  }
}

/** The transient error for a send given up because `signal` aborted. */
export function abortedError(provider: string, signal: AbortSignal): EmailTransientError {
  return new EmailTransientError(`Send through ${provider} was aborted`, {
    provider,
    cause: signal.reason,
  });
}
