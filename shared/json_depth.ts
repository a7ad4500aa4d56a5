/**
 * Nesting bounds for caller-supplied JSON. A recursive walk over a value
 * nested 20,000 levels deep overflows the stack (a RangeError thrown from the
 * platform's own code), so bodies are measured by a byte scan before
 * anything recursive runs. Walks over parsed caller values are iterative
 * (shared/analytics/ingest.ts) or bounded by {@linkcode DEFAULT_MAX_JSON_DEPTH}
 * (shared/queue/canonical_json.ts).
 *
 * @module
 */

/** Deepest nesting of arrays and objects accepted by default (`MAX_JSON_DEPTH`). */
export const DEFAULT_MAX_JSON_DEPTH = 64;

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * Whether the JSON text `bytes` (UTF-8) nests arrays/objects deeper than
 * `limit`, without parsing it. Brackets inside strings do not count. Invalid
 * JSON gives some answer; the parser rejects it afterwards. In UTF-8 no byte
 * of a multi-byte character is ASCII, so scanning bytes is exact.
 */
export function jsonTextDepthExceeds(bytes: Uint8Array, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === BACKSLASH) i++;
      else if (b === QUOTE) inString = false;
      continue;
    }
    if (b === QUOTE) inString = true;
    else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      if (++depth > limit) return true;
    } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) depth--;
  }
  return false;
}
