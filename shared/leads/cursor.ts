/**
 * The opaque lead-list cursor: the sort it belongs to and the position of the
 * last row of a page in that sort — its sort key and id (the tie-break) —
 * base64url-encoded. Timestamps keep Postgres' microseconds — a JS Date would
 * round them to milliseconds, and rows of the same millisecond would then be
 * skipped or repeated between pages. A cursor of another sort or order is
 * refused rather than read as a position it is not.
 *
 * @module
 */
import { MICROS_TIMESTAMP_PATTERN } from "../db/keyset.ts";
import { InvalidCursorError } from "./errors.ts";

/** The orders of `GET /v1/leads` (migration 009 indexes each with its id tie-break). */
export const LEAD_SORTS = ["created_at", "updated_at", "lead_score"] as const;
export type LeadSort = typeof LEAD_SORTS[number];
export type SortOrder = "asc" | "desc";

/** A keyset position in the (key, id) order of `sort`. */
export interface CursorPosition {
  sort: LeadSort;
  order: SortOrder;
  /**
   * The last row's sort key: UTC with microseconds
   * (`2025-01-31T12:00:00.123456Z`) for the timestamps; the score, or -1 for
   * none, for `lead_score`.
   */
  key: string | number;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Encodes a position as an opaque base64url string. */
export function encodeCursor(position: CursorPosition): string {
  const json = JSON.stringify([position.sort, position.order, position.key, position.id]);
  return btoa(json).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function validKey(sort: unknown, key: unknown): boolean {
  if (sort === "lead_score") {
    return typeof key === "number" && Number.isFinite(key) && key >= -1 && key <= 100;
  }
  return typeof key === "string" && MICROS_TIMESTAMP_PATTERN.test(key) &&
    Number.isFinite(Date.parse(key));
}

/**
 * Decodes a cursor; {@linkcode InvalidCursorError} when it is not one of ours
 * or was made for another sort or order than `expected`.
 */
export function decodeCursor(
  cursor: string,
  expected: { sort: LeadSort; order: SortOrder } = { sort: "created_at", order: "desc" },
): CursorPosition {
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]{1,300}$/.test(cursor)) throw new Error("not base64url");
    parsed = JSON.parse(atob(cursor.replace(/-/g, "+").replace(/_/g, "/")));
  } catch (err) {
    throw new InvalidCursorError({ cause: err });
  }
  // Cursors from before the sorts ([created_at, id]) are newest-first positions.
  if (Array.isArray(parsed) && parsed.length === 2) parsed = ["created_at", "desc", ...parsed];
  if (
    !Array.isArray(parsed) || parsed.length !== 4 ||
    parsed[0] !== expected.sort || parsed[1] !== expected.order ||
    !validKey(parsed[0], parsed[2]) ||
    typeof parsed[3] !== "string" || !UUID.test(parsed[3])
  ) {
    throw new InvalidCursorError();
  }
  return { sort: expected.sort, order: expected.order, key: parsed[2], id: parsed[3] };
}
