/**
 * The outgoing message every provider sends (composed by message.ts).
 *
 * @module
 */

/** A file attached to a message (e.g. the `.ics` invite). */
export interface EmailAttachment {
  filename: string;
  /** Full content type, parameters included, e.g. `text/calendar; method=REQUEST`. */
  contentType: string;
  /** Strings are encoded as UTF-8. */
  content: string | Uint8Array;
}

/** One message, ready for a provider. */
export interface OutgoingEmail {
  /** Full Message-ID with angle brackets, `<id@domain>` (see `messageIdFor`). */
  messageId: string;
  /** Sender, e.g. `Pleasant Cove <hello@pleasantcove.example>`. */
  from: string;
  /** One recipient address. */
  to: string;
  subject: string;
  text: string;
  html: string;
  attachments?: readonly EmailAttachment[];
  /** Extra headers, e.g. those from `unsubscribeHeaders()`. */
  headers?: Readonly<Record<string, string>>;
  /**
   * The Date header. Pass the ledger row's creation time so that a retry
   * composes the same bytes. @default the time of composing
   */
  date?: Date;
}
