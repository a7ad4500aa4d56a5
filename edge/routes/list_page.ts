/**
 * The one list envelope and pagination style of the API (docs/api.md, "Lists
 * and pages"): every list answers `{ data, next_cursor }` (plus `total` where
 * counting is cheap), pages by an opaque keyset `cursor` and takes `limit`.
 *
 * A cursor is base64url JSON of the last row's sort key; the route gives the
 * shape it expects, and anything else — edited, truncated, from another list —
 * is one 400 `invalid-request` on `query.cursor` instead of a wrong page.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { z } from "@hono/zod-openapi";
import { MICROS_TIMESTAMP_PATTERN } from "../../shared/db/keyset.ts";
import { RequestValidationError } from "../validation.ts";

/** What a decoded cursor must look like, e.g. `z.tuple([z.string(), z.uuid()])`. */
export type CursorShape<T> = z.ZodType<T>;

/** `{ data, next_cursor }` (and `total`, described by `options.total`) around `item`, named `name` in OpenAPI. */
export function pageSchema<T extends z.ZodType>(
  item: T,
  name: string,
  options: { total?: string } = {},
) {
  const base = {
    data: z.array(item),
    next_cursor: z.string().nullable().openapi({
      description:
        "Pass as `cursor` (with the same other parameters) for the next page; null on the last page",
    }),
  };
  const shape = options.total === undefined
    ? base
    : { ...base, total: z.number().int().openapi({ description: options.total }) };
  return z.object(shape).openapi(name);
}

/** The `cursor` and `limit` query parameters of a list, as one object to spread into its query schema. */
export function pageQuery(options: { defaultLimit: number; maxLimit: number }) {
  return {
    cursor: z.string().max(500).optional().openapi({
      description: "`next_cursor` of the previous page, unchanged",
    }),
    limit: z.coerce.number().int().min(1).max(options.maxLimit).default(options.defaultLimit)
      .openapi({
        description: `Page size (default ${options.defaultLimit}, max ${options.maxLimit})`,
      }),
  };
}

/** Encodes a row's sort key as an opaque cursor. */
export function encodePageCursor(key: unknown): string {
  return Buffer.from(JSON.stringify(key)).toString("base64url");
}

/** Decodes a cursor of `shape`; a 400 on `query.cursor` when it is not one this list returned. */
export function decodePageCursor<T>(text: string, shape: CursorShape<T>): T {
  let value: unknown = null;
  if (/^[A-Za-z0-9_-]{1,500}$/.test(text)) {
    try {
      value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
    } catch {
      value = null;
    }
  }
  const parsed = shape.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new RequestValidationError([{
    field: "query.cursor",
    message: "not a cursor this list returned; start again without one",
  }]);
}

/** A cursor's timestamp: UTC with microseconds, as shared/db/keyset.ts renders it. */
export const MICROS_TIMESTAMP = z.string().regex(MICROS_TIMESTAMP_PATTERN);
