/**
 * The opaque list cursor: the position (created_at, id) of the last row of a
 * page, base64url-encoded. The timestamp keeps Postgres' microseconds — a JS
 * Date would round them to milliseconds, and rows of the same millisecond
 * would then be skipped or repeated between pages.
 *
 * @module
 */
import { InvalidCursorError } from "./errors.ts";

/** A keyset position in the (created_at DESC, id DESC) order. */
export interface CursorPosition {
  /** UTC with microseconds: `2025-01-31T12:00:00.123456Z`. */
  created_at: string;
  id: string;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** SQL expression rendering `created_at` in the cursor's timestamp format. */
export const CURSOR_TS_SQL =
  `to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/** Encodes a position as an opaque base64url string. */
export function encodeCursor(position: CursorPosition): string {
  const json = JSON.stringify([position.created_at, position.id]);
  return btoa(json).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes a cursor; {@linkcode InvalidCursorError} when it is not one of ours. */
export function decodeCursor(cursor: string): CursorPosition {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new Error("not base64url");
    parsed = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
  } catch (err) {
    throw new InvalidCursorError({ cause: err });
  }
  if (
    !Array.isArray(parsed) || parsed.length !== 2 ||
    typeof parsed[0] !== "string" || !TIMESTAMP.test(parsed[0]) ||
    typeof parsed[1] !== "string" || !UUID.test(parsed[1]) ||
    !Number.isFinite(Date.parse(parsed[0]))
  ) {
    throw new InvalidCursorError();
  }
  return { created_at: parsed[0], id: parsed[1] };
}
