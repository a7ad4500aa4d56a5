/**
 * RFC 9457 problem details. Every error the edge answers is
 * `application/problem+json` with a stable `code`, so clients (Minerva
 * included) branch on `code`, never on prose.
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/** Body of a problem response. */
export interface Problem {
  /** Stable machine-readable code, e.g. "not-found". */
  code: string;
  status: number;
  title: string;
  detail?: string;
  [extension: string]: unknown;
}

/** Builds the problem+json response; adds `type`, `instance` and `request_id`. */
export function problem(c: Context, p: Problem, headers: Record<string, string> = {}): Response {
  const body = {
    type: `/problems/${p.code}`,
    instance: c.req.path,
    request_id: c.get("requestId" as never) as string | undefined,
    ...p,
  };
  return c.body(JSON.stringify(body), p.status as ContentfulStatusCode, {
    "Content-Type": "application/problem+json",
    ...headers,
  });
}
