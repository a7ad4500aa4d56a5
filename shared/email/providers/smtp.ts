/**
 * SMTP provider: one connection per send (no pool, so an idle worker holds
 * no socket), with short timeouts so a dead server turns into a retry
 * quickly instead of eating the task's time budget. It drives nodemailer's
 * SMTPConnection directly rather than a transport so that an aborted task
 * closes its socket instead of leaving the exchange running.
 *
 * SMTP has no idempotency key. If the process dies (or the task's signal
 * aborts) after the server accepted DATA but before the ledger records it,
 * the retry sends the message again. That window cannot be closed from here;
 * the deterministic Message-ID lets receiving systems drop the duplicate.
 *
 * @module
 */
import { Buffer } from "node:buffer";
// @ts-types="@types/nodemailer/lib/smtp-connection/index.d.ts"
import SMTPConnection from "nodemailer/lib/smtp-connection/index.js";
import { composeWithEnvelope, type Envelope, type OutgoingEmail } from "../message.ts";
import {
  abortedError,
  EmailPermanentError,
  type EmailProvider,
  EmailProviderConfigError,
  EmailTransientError,
  type SendOptions,
  type SendResult,
} from "../provider.ts";

/** Options of `createSmtpProvider`. */
export interface SmtpProviderOptions {
  /** Time to establish the TCP (or TLS) connection. @default 10_000 */
  connectionTimeoutMs?: number;
  /** Time to wait for the server's greeting once connected. @default 10_000 */
  greetingTimeoutMs?: number;
  /** Inactivity allowed on an open connection. @default 30_000 */
  socketTimeoutMs?: number;
  /** Hostname announced in EHLO. @default nodemailer's (the machine's hostname) */
  clientName?: string;
  /**
   * Send credentials over `smtp://` even when the server offers no STARTTLS.
   * For tests against a local plaintext server only. @default false: with
   * credentials, `smtp://` requires STARTTLS and fails before AUTH without it
   */
  allowPlaintextAuth?: boolean;
}

/** The fields of a nodemailer SMTP error this module reads. */
interface SmtpErrorLike {
  message?: string;
  code?: string;
  responseCode?: number;
  response?: string;
}

/**
 * Maps a nodemailer error to the queue's classes: a 5xx reply about the
 * message (MAIL/RCPT/DATA) is permanent; 4xx replies, connection errors and
 * timeouts are transient, as is anything unrecognised. A 5xx to AUTH (bad credentials) is transient too:
 * it is our configuration, not this message, that is wrong, and
 * dead-lettering every queued email over it would be worse than retrying
 * while someone fixes the secret.
 */
export function classifySmtpError(err: unknown): EmailPermanentError | EmailTransientError {
  const e = (typeof err === "object" && err !== null ? err : {}) as SmtpErrorLike;
  const status = typeof e.responseCode === "number" ? e.responseCode : undefined;
  const text = e.response?.trim() || e.message || String(err);
  if (status !== undefined && status >= 500 && status < 600 && e.code !== "EAUTH") {
    return new EmailPermanentError(text, { provider: "smtp", status, cause: err });
  }
  // nodemailer refused the envelope before talking (no or malformed address): the message is at fault.
  if (status === undefined && e.code === "EENVELOPE") {
    return new EmailPermanentError(text, { provider: "smtp", cause: err });
  }
  return new EmailTransientError(`SMTP send failed: ${text}`, {
    provider: "smtp",
    status,
    cause: err,
  });
}

function parseSmtpUrl(raw: string) {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // The URL may hold a password: never echo it.
    throw new EmailProviderConfigError("smtp", "the URL does not parse");
  }
  if (url.protocol !== "smtp:" && url.protocol !== "smtps:") {
    throw new EmailProviderConfigError(
      "smtp",
      `scheme must be smtp: or smtps:, not ${url.protocol}`,
    );
  }
  if (!url.hostname) throw new EmailProviderConfigError("smtp", "the URL has no host");
  const secure = url.protocol === "smtps:";
  const user = decodeURIComponent(url.username);
  return {
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port ? Number(url.port) : secure ? 465 : 587,
    secure,
    ...(user ? { auth: { user, pass: decodeURIComponent(url.password) } } : {}),
  };
}

type Settings = ReturnType<typeof parseSmtpUrl> & SMTPConnection.Options;

/** One SMTP exchange: connect (STARTTLS when offered), AUTH if configured, MAIL/RCPT/DATA. */
function deliver(
  settings: Settings,
  envelope: Envelope,
  eml: Uint8Array,
  signal: AbortSignal | undefined,
): Promise<SMTPConnection.SentMessageInfo> {
  const { auth, ...options } = settings;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError("smtp", signal));
    const conn = new SMTPConnection(options);
    let settled = false;
    const finish = (err: unknown, info?: SMTPConnection.SentMessageInfo) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      conn.close();
      if (info) resolve(info);
      else reject(err);
    };
    const onAbort = () => finish(abortedError("smtp", signal!));
    signal?.addEventListener("abort", onAbort, { once: true });
    conn.once("error", (err) => finish(err));
    conn.once(
      "end",
      () =>
        finish(Object.assign(new Error("Connection closed unexpectedly"), { code: "ECONNECTION" })),
    );
    const send = () =>
      conn.send(envelope, Buffer.from(eml), (err, info) => err ? finish(err) : finish(null, info));
    conn.connect(() => {
      if (!auth) return send();
      conn.login(auth, (err) => err ? finish(err) : send());
    });
  });
}

/**
 * A provider sending through the SMTP server at `url`
 * (`smtp://user:pass@host:port`, or `smtps://` for TLS from the first byte;
 * `smtp://` upgrades with STARTTLS when the server offers it, and must when
 * the URL has credentials).
 */
export function createSmtpProvider(url: string, options: SmtpProviderOptions = {}): EmailProvider {
  const parsed = parseSmtpUrl(url);
  const settings: Settings = {
    ...parsed,
    // A password must never cross the network in clear text: with
    // credentials, plain smtp:// must upgrade (STARTTLS) or fail.
    ...(parsed.auth && !parsed.secure && !options.allowPlaintextAuth ? { requireTLS: true } : {}),
    connectionTimeout: options.connectionTimeoutMs ?? 10_000,
    greetingTimeout: options.greetingTimeoutMs ?? 10_000,
    socketTimeout: options.socketTimeoutMs ?? 30_000,
    ...(options.clientName ? { name: options.clientName } : {}),
    logger: false,
    debug: false,
  };
  return {
    name: "smtp",
    async send(msg: OutgoingEmail, opts: SendOptions): Promise<SendResult> {
      if (opts.signal?.aborted) throw abortedError("smtp", opts.signal);
      const { eml, envelope } = await composeWithEnvelope(msg);
      try {
        const info = await deliver(settings, envelope, eml, opts.signal);
        const response = String(info.response ?? "");
        const queued = /queued as ([A-Za-z0-9._-]+)/i.exec(response)?.[1];
        return { response, ...(queued ? { providerMessageId: queued } : {}) };
      } catch (err) {
        if (err instanceof EmailTransientError) throw err;
        throw classifySmtpError(err);
      }
    },
  };
}
