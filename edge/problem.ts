/**
 * RFC 9457 problem details. Every error the edge answers is
 * `application/problem+json` with a stable `code`, so clients (Minerva
 * included) branch on `code`, never on prose. The `title` is fixed per code
 * (edge/problem_titles.ts); what is specific to one occurrence is `detail`.
 *
 * @module
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { problemTitle } from "./problem_titles.ts";

/** Body of a problem response. */
export interface Problem {
  /** Stable machine-readable code, e.g. "not-found"; must be in the catalog. */
  code: string;
  status: number;
  /**
   * Ignored as the title, which is the catalog's for `code`: a text that
   * differs from it becomes `detail` when there is none.
   */
  title?: string;
  detail?: string;
  [extension: string]: unknown;
}

/** Builds the problem+json response; adds `type`, `instance` and `request_id`. */
export function problem(c: Context, p: Problem, headers: Record<string, string> = {}): Response {
  const title = problemTitle(p.code);
  const detail = p.detail ?? (p.title !== undefined && p.title !== title ? p.title : undefined);
  const body = {
    type: `/problems/${p.code}`,
    instance: c.req.path,
    request_id: c.get("requestId" as never) as string | undefined,
    ...p,
    title,
    ...(detail === undefined ? {} : { detail }),
  };
  return c.body(JSON.stringify(body), p.status as ContentfulStatusCode, {
    "Content-Type": "application/problem+json",
    ...headers,
  });
}
