/**
 * RESP2 replies → the JSON text of the Upstash envelope
 * (docs/reference/upstash-rest-protocol.md §4.1). The JSON is written as text, not built as
 * objects for `JSON.stringify`: a 1,000-command pipeline then allocates one
 * string per value instead of an object per entry.
 *
 * @module
 */
import { Buffer } from "node:buffer";

/**
 * A RESP2 reply as the Redis link delivers it: bulk and simple strings as raw
 * bytes (binary-safe), integers as their exact decimal text (no precision is
 * lost above 2^53 on the bridge's side), null for `$-1`/`*-1`, arrays, and
 * `Error`s for error replies nested inside arrays (a Lua table holding
 * `{err=…}`, an EXEC element).
 */
export type RedisReply = Uint8Array | string | number | null | Error | RedisReply[];

/** Upstash-Encoding of a response: every string base64 or plain text. */
export type ResponseEncoding = "base64" | "text";

/**
 * The JSON text of `reply`. In base64 mode every string is base64 at every
 * depth, "OK" included (SRH's rule, always decoded correctly by the client);
 * in text mode bulk strings are UTF-8 with invalid bytes replaced by U+FFFD.
 * Nested errors become their message as a plain string, never encoded: the
 * spec leaves their form open (§4.2) and the SDK never needs them.
 */
export function replyJson(reply: RedisReply, encoding: ResponseEncoding): string {
  if (reply instanceof Uint8Array) {
    const bytes = reply instanceof Buffer
      ? reply
      : Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
    // Base64 never needs JSON escaping; text does.
    return encoding === "base64"
      ? `"${bytes.toString("base64")}"`
      : JSON.stringify(bytes.toString("utf8"));
  }
  if (typeof reply === "string") return reply; // an integer's decimal text
  if (typeof reply === "number") return String(reply);
  if (reply === null) return "null";
  if (Array.isArray(reply)) {
    let out = "[";
    for (let i = 0; i < reply.length; i++) {
      if (i > 0) out += ",";
      out += replyJson(reply[i]!, encoding);
    }
    return out + "]";
  }
  return JSON.stringify(reply.message);
}

/** `{"result":…}` for a successful reply. */
export function resultJson(reply: RedisReply, encoding: ResponseEncoding): string {
  return `{"result":${replyJson(reply, encoding)}}`;
}

/** `{"error":"…"}`; error texts are never base64 (the client never decodes them). */
export function errorJson(message: string): string {
  return `{"error":${JSON.stringify(message)}}`;
}
