/**
 * 400 `json-too-deep` for a JSON body nesting arrays/objects deeper than the
 * limit (`MAX_JSON_DEPTH`), decided by a byte scan before any parser,
 * validator or handler walks it: a body nested 20,000 levels deep must be the
 * caller's mistake, not a stack overflow inside the platform (issue 13).
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { jsonTextDepthExceeds } from "../../shared/json_depth.ts";
import { problem } from "../problem.ts";
import { readingBody } from "../request_body.ts";

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

function isJson(contentType: string | undefined): boolean {
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return type === "application/json" || /^application\/[\w.+-]+\+json$/.test(type);
}

/**
 * Refuses JSON bodies deeper than `maxDepth`. Mount after the body size
 * limit: the body is read (and cached by Hono for the handlers) here.
 */
export function limitJsonDepth(maxDepth: number): MiddlewareHandler {
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new RangeError(`limitJsonDepth() needs a positive integer, got ${maxDepth}`);
  }
  return async function limitJsonDepth(c, next) {
    if (
      BODY_METHODS.has(c.req.method) && c.req.raw.body !== null &&
      isJson(c.req.header("content-type"))
    ) {
      const bytes = new Uint8Array(await readingBody(() => c.req.arrayBuffer()));
      if (jsonTextDepthExceeds(bytes, maxDepth)) {
        return problem(c, {
          code: "json-too-deep",
          status: 400,
          title: "JSON nested too deeply",
          detail: `Arrays and objects may nest at most ${maxDepth} levels`,
          max_depth: maxDepth,
        });
      }
    }
    await next();
  };
}
