/**
 * Validation messages in plain language: zod's default phrasing ("Invalid
 * input: expected string, received undefined") becomes what a person fixing
 * the request needs ("required", "must be a string"). Used by the edge's 400
 * `invalid-request` and by event ingest's per-event reasons, so every API
 * surface words the same mistake the same way.
 *
 * @module
 */

/** The parts of a zod issue the wording needs. */
export interface IssueLike {
  code?: string;
  path: readonly PropertyKey[];
  message: string;
  keys?: readonly string[];
}

const EXPECTED = /^Invalid input: expected (\w+), received (\w+)$/;
const ARTICLE: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  object: "an object",
  array: "an array",
  int: "an integer",
  bigint: "an integer",
  date: "a date",
};

/** One issue as `{ path, message }` in plain words; an unknown key becomes its own path. */
export function plainIssues(issue: IssueLike): { path: string[]; message: string }[] {
  const path = issue.path.map(String);
  if (issue.code === "unrecognized_keys" && issue.keys && issue.keys.length > 0) {
    return issue.keys.map((k) => ({ path: [...path, k], message: "unknown field" }));
  }
  const m = EXPECTED.exec(issue.message);
  if (m) {
    const [, expected, received] = m;
    if (received === "undefined") return [{ path, message: "required" }];
    return [{ path, message: `must be ${ARTICLE[expected!] ?? expected} (got ${received})` }];
  }
  return [{ path, message: issue.message }];
}
