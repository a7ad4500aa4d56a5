/**
 * The pieces every keyset-paged list shares (docs/api.md, "Lists and
 * pages"): timestamps rendered by Postgres with microseconds for cursors —
 * a JS Date keeps milliseconds only, and rows of the same millisecond would
 * be skipped or repeated between pages — and the page cut from a query that
 * fetched one row more than the page.
 *
 * @module
 */

/** SQL rendering the timestamptz `column` as UTC text with microseconds. */
export function microsTimestampSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** What {@linkcode microsTimestampSql} renders: `2025-01-31T12:00:00.123456Z`. */
export const MICROS_TIMESTAMP_PATTERN = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * The page of `rows` fetched with `LIMIT limit + 1`: its first `limit` rows,
 * and its last row when another page follows (the next cursor's position),
 * else null.
 */
export function keysetPage<T>(rows: readonly T[], limit: number): { page: T[]; last: T | null } {
  const page = rows.slice(0, limit);
  return { page, last: rows.length > limit ? page.at(-1) ?? null : null };
}
