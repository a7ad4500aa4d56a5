/**
 * HTTP API provider: POSTs the message as JSON to a transactional-email API.
 * The Message-ID doubles as the `Idempotency-Key`, so a retried attempt
 * (after a timeout where the first request did land) is deduplicated by the
 * provider instead of sending twice.
 *
 * Request body: `{ from, to, subject, text, html, headers, attachments:
 * [{ filename, contentType, content (base64) }] }`; the Message-ID is also
 * sent in `headers`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { OutgoingEmail } from "../message.ts";
import {
  abortedError,
  EmailPermanentError,
  type EmailProvider,
  EmailProviderConfigError,
  EmailTransientError,
  type SendOptions,
  type SendResult,
} from "../provider.ts";

/** The `fetch` shape the provider calls; a circuit breaker's `fetch` fits. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of `createHttpApiProvider`. */
export interface HttpApiProviderOptions {
  /** Endpoint receiving the POST. */
  url: string;
  /** Sent as `Authorization: Bearer <apiKey>`; a function is read per send (rotation). */
  apiKey: string | (() => string);
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /** Budget of one request, body included. @default 10_000 */
  timeoutMs?: number;
}

const PROVIDER = "http_api";
const MAX_MESSAGE = 500;

/** The provider's own error text from a JSON body (`message`, `error.message`, `error`), else the raw text. */
function providerMessage(body: string): string {
  try {
    const json = JSON.parse(body) as Record<string, unknown>;
    const err = json.error;
    const found = json.message ??
      (typeof err === "object" && err !== null ? (err as Record<string, unknown>).message : err);
    if (typeof found === "string" && found.trim()) return found.trim().slice(0, MAX_MESSAGE);
  } catch {
    // not JSON: fall through to the text
  }
  return body.trim().slice(0, MAX_MESSAGE);
}

function retryAfterMs(res: Response): number | undefined {
  const raw = res.headers.get("retry-after");
  if (raw === null) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function requestBody(msg: OutgoingEmail): string {
  return JSON.stringify({
    from: msg.from,
    to: msg.to,
    subject: msg.subject,
    text: msg.text,
    html: msg.html,
    headers: { ...msg.headers, "Message-ID": msg.messageId },
    attachments: (msg.attachments ?? []).map((a) => ({
      filename: a.filename,
      contentType: a.contentType,
      content: Buffer.from(a.content).toString("base64"),
    })),
  });
}

/** A provider POSTing each message to `options.url`. */
export function createHttpApiProvider(options: HttpApiProviderOptions): EmailProvider {
  let endpoint: URL;
  try {
    endpoint = new URL(options.url);
  } catch {
    throw new EmailProviderConfigError(PROVIDER, "url does not parse");
  }
  if (endpoint.protocol !== "https:" && endpoint.protocol !== "http:") {
    throw new EmailProviderConfigError(PROVIDER, `url must be http(s), not ${endpoint.protocol}`);
  }
  if (!options.apiKey) throw new EmailProviderConfigError(PROVIDER, "apiKey is empty");
  const doFetch: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const timeoutMs = options.timeoutMs ?? 10_000;

  return {
    name: PROVIDER,
    async send(msg: OutgoingEmail, opts: SendOptions): Promise<SendResult> {
      if (opts.signal?.aborted) throw abortedError(PROVIDER, opts.signal);
      const controller = new AbortController();
      const onAbort = () => controller.abort(opts.signal?.reason);
      opts.signal?.addEventListener("abort", onAbort, { once: true });
      // A plain timer rather than AbortSignal.timeout(): it is cleared in
      // `finally`, so no timer outlives the send.
      const timer = setTimeout(
        () => controller.abort(new DOMException(`No answer in ${timeoutMs}ms`, "TimeoutError")),
        timeoutMs,
      );
      try {
        let res: Response;
        let body: string;
        try {
          res = await doFetch(endpoint, {
            method: "POST",
            headers: {
              "Authorization": `Bearer ${
                typeof options.apiKey === "function" ? options.apiKey() : options.apiKey
              }`,
              "Content-Type": "application/json",
              "Accept": "application/json",
              "Idempotency-Key": msg.messageId,
            },
            body: requestBody(msg),
            signal: controller.signal,
          });
          body = await res.text();
        } catch (err) {
          if (opts.signal?.aborted) throw abortedError(PROVIDER, opts.signal);
          // A breaker's 429 carries the unread response: release its body.
          await (err as { response?: Response | null }).response?.body?.cancel().catch(() => {});
          const hint = (err as { retryAfterMs?: unknown }).retryAfterMs;
          throw new EmailTransientError(`Email API request failed: ${(err as Error).message}`, {
            provider: PROVIDER,
            cause: err,
            ...(typeof hint === "number" ? { retryAfterMs: hint } : {}),
          });
        }
        const text = providerMessage(body);
        if (res.ok) {
          let id: unknown;
          try {
            const json = JSON.parse(body) as Record<string, unknown>;
            id = json.id ?? json.message_id ?? json.messageId;
          } catch {
            // a 2xx without JSON still means accepted
          }
          return {
            response: `${res.status} ${text}`.trim(),
            ...(typeof id === "string" || typeof id === "number"
              ? { providerMessageId: String(id) }
              : {}),
          };
        }
        const status = res.status;
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          throw new EmailPermanentError(text || `HTTP ${status}`, { provider: PROVIDER, status });
        }
        const wait = retryAfterMs(res);
        throw new EmailTransientError(`Email API answered ${status}: ${text}`, {
          provider: PROVIDER,
          status,
          ...(wait === undefined ? {} : { retryAfterMs: wait }),
        });
      } finally {
        clearTimeout(timer);
        opts.signal?.removeEventListener("abort", onAbort);
      }
    },
  };
}
