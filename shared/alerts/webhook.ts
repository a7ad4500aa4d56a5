/**
 * One alert webhook call: SSRF check (target.ts), then a POST of the event's
 * body (body.ts) with `Idempotency-Key: <event id>`, the optional
 * `Authorization` header, no redirects followed and a time budget. The
 * outcome decides the task's fate: a 2xx delivered; 408, 429, 5xx, a
 * timeout or a network error retried; any other status (redirects included)
 * and a refused target permanent. Errors never carry the URL or the
 * authorization (both may be secrets): the runtime's network errors name the
 * URL, so their text is redacted before it is kept.
 *
 * @module
 */
import { PermanentTaskError } from "../queue/errors.ts";
import { alertBody, type AlertEvent, type AlertFormat } from "./body.ts";
import { AlertTargetRefusedError, checkAlertTarget, type Resolver } from "./target.ts";

/** Where and how alerts go (Config["alerts"] with the URL set). */
export interface WebhookSettings {
  url: string;
  format: AlertFormat;
  authorization: string | null;
  timeoutMs: number;
  /** Development/test: loopback and private receivers allowed. */
  allowPrivate: boolean;
  /** Alertmanager's `externalURL`: the platform's public base URL. */
  externalUrl: string;
}

/** Options of {@linkcode postAlert}. */
export interface PostOptions {
  /** Aborts the call (the task's signal). */
  signal?: AbortSignal;
  resolve?: Resolver;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** Why a call failed, for the metrics: `retry` is retried, the others are permanent. */
export type FailureKind = "retry" | "rejected" | "refused";

/** A failed call; `kind` says whether a retry can help. */
export class AlertDeliveryError extends Error {
  override name = "AlertDeliveryError";
  constructor(readonly kind: FailureKind, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A failure that retrying cannot fix, as the runner recognises it. */
function permanent(kind: FailureKind, message: string, cause?: unknown): PermanentTaskError {
  const err = new PermanentTaskError(message, cause === undefined ? undefined : { cause });
  Object.assign(err, { kind });
  return err;
}

/** `text` without the URL or any part of it that names the receiver. */
function redact(text: string, url: URL): string {
  let out = text;
  for (const part of [url.href, url.origin, url.host, url.hostname]) {
    if (part) out = out.split(part).join("[alert webhook]");
  }
  return out;
}

/** The failure kind of any error {@linkcode postAlert} throws. */
export function failureKind(err: unknown): FailureKind {
  const kind = (err as { kind?: unknown } | null)?.kind;
  return kind === "rejected" || kind === "refused" ? kind : "retry";
}

/** POSTs one event; resolves with the receiver's status on a 2xx. */
export async function postAlert(
  event: AlertEvent,
  settings: WebhookSettings,
  options: PostOptions = {},
): Promise<number> {
  const url = new URL(settings.url);
  const timeout = AbortSignal.timeout(settings.timeoutMs);
  const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
  try {
    await checkAlertTarget(url, {
      allowPrivate: settings.allowPrivate,
      signal,
      ...(options.resolve ? { resolve: options.resolve } : {}),
    });
  } catch (err) {
    if (err instanceof AlertTargetRefusedError && err.cause === undefined) {
      throw permanent("refused", `Alert webhook refused: ${err.message}`);
    }
    // A failed lookup may be passing: retried.
    throw new AlertDeliveryError("retry", "Alert webhook host lookup failed");
  }
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "idempotency-key": event.event_id,
    "user-agent": "pleasant-cove-alerts/1",
  };
  if (settings.authorization !== null) headers.authorization = settings.authorization;
  const body = JSON.stringify(await alertBody(event, settings.format, settings.externalUrl));
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers,
      body,
      redirect: "manual",
      signal,
    });
  } catch (err) {
    const why = timeout.aborted
      ? `timed out after ${settings.timeoutMs} ms`
      : redact(err instanceof Error ? `${err.name}: ${err.message}` : String(err), url);
    throw new AlertDeliveryError("retry", `Alert webhook call failed: ${why}`);
  }
  // The body is not needed; cancelling it frees the connection.
  await res.body?.cancel().catch(() => {});
  if (res.status >= 200 && res.status < 300) return res.status;
  if (res.status === 408 || res.status === 429 || res.status >= 500) {
    throw new AlertDeliveryError("retry", `Alert webhook answered ${res.status}`);
  }
  const redirect = res.status >= 300 && res.status < 400 ? " (redirects are not followed)" : "";
  throw permanent("rejected", `Alert webhook answered ${res.status}${redirect}`);
}
