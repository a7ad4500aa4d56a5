/**
 * The request side of HTTP idempotency: parsing the `Idempotency-Key` header,
 * reading the body without taking it from the handler, and the request
 * fingerprint that tells a retry from a different request reusing a key.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../../shared/queue/canonical_json.ts";
import { readCapped } from "../../shared/read_capped.ts";

/** Longest accepted key, in characters (Stripe's limit). */
export const MAX_KEY_LENGTH = 255;

const PRINTABLE = /^[\x20-\x7e]+$/;

/**
 * Returns the key, or null when the header value is malformed. Accepts a bare
 * token (Stripe: `Idempotency-Key: abc`) and the IETF draft's structured-field
 * string (`Idempotency-Key: "abc"`, with `\"` and `\\` escapes). A key is 1 to
 * 255 printable ASCII characters.
 */
export function parseIdempotencyKey(value: string): string | null {
  let key = value;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
    key = "";
    const inner = value.slice(1, -1);
    for (let i = 0; i < inner.length; i++) {
      const ch = inner[i]!;
      if (ch === '"') return null;
      if (ch === "\\") {
        const next = inner[++i];
        if (next !== '"' && next !== "\\") return null;
        key += next;
      } else {
        key += ch;
      }
    }
  }
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !PRINTABLE.test(key)) return null;
  return key;
}

/**
 * Reads a request body up to `maxBytes` and returns it, or null when it is
 * larger. Reads a clone, so `request` itself stays readable for the handler.
 */
export async function readBodyCapped(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array | null> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) return null;
  if (request.body === null) return new Uint8Array();
  return await readCapped(request.clone().body, maxBytes);
}

const JSON_TYPE = /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i;

/**
 * Hex SHA-256 over method, path (with query) and body. JSON bodies are hashed
 * in canonical form, so a client that re-serialises the same data with other
 * key order or spacing is still recognised as a retry; any other body (or
 * JSON that does not parse) is hashed byte for byte.
 */
export function requestFingerprint(
  method: string,
  target: string,
  contentType: string | undefined,
  body: Uint8Array,
): string {
  let kind = "raw";
  let payload = body;
  if (body.byteLength > 0 && contentType !== undefined && JSON_TYPE.test(contentType)) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(body);
      payload = new TextEncoder().encode(canonicalJson(JSON.parse(text)));
      kind = "json";
    } catch {
      // Not valid JSON after all: the raw bytes are the request.
    }
  }
  // node:crypto, not crypto.subtle: a twentieth of the CPU per digest in Deno 2.9
  // (docs/benchmarks.md, design measurements), and it hashes the parts without a copy.
  return createHash("sha256").update(`${method}\n${target}\n${kind}\n`).update(payload).digest(
    "hex",
  );
}
