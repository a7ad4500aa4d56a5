/**
 * HTTP-level request rules that come before any route: JSON-only request
 * bodies (415), body size (413), and 405 with `Allow` for a known path called
 * with the wrong method.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { problem } from "../problem.ts";

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** 415 unless a request with a body declares JSON. */
export function requireJson(): MiddlewareHandler {
  return async function requireJson(c, next) {
    if (BODY_METHODS.has(c.req.method)) {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "application/json" && !/^application\/[\w.+-]+\+json$/.test(type)) {
        return problem(c, {
          code: "unsupported-media-type",
          status: 415,
          title: "Unsupported content type",
          detail: `Send the body as application/json (got ${
            type ? JSON.stringify(type) : "no Content-Type"
          })`,
        }, { "Accept-Post": "application/json" });
      }
    }
    await next();
  };
}

/** 413 above `maxBytes`, checked on the stream (a lying Content-Length cannot bypass it). */
export function limitBody(maxBytes: number): MiddlewareHandler {
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) {
    throw new RangeError(`limitBody() needs a positive integer, got ${maxBytes}`);
  }
  return bodyLimit({
    maxSize: maxBytes,
    onError: (c) =>
      problem(c, {
        code: "payload-too-large",
        status: 413,
        title: "Request body too large",
        detail: `The limit is ${maxBytes} bytes`,
      }),
  });
}

/** Compiles Hono route patterns (`/v1/tasks/:id`) to matchers. */
function patternToRegExp(path: string): RegExp {
  const body = path.split("/").map((seg) =>
    seg.startsWith(":") ? "[^/]+" : seg === "*" ? ".*" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("/");
  return new RegExp(`^${body}/?$`);
}

/**
 * For the notFound handler: the methods the app serves at this path, so a
 * wrong method gets 405 + Allow instead of 404.
 */
export function allowedMethods(
  routes: { method: string; path: string }[],
): (c: Context) => string[] {
  let table: { re: RegExp; method: string }[] | null = null;
  return (c) => {
    table ??= routes
      .filter((r) => r.method !== "ALL" && !r.path.endsWith("*"))
      .map((r) => ({ re: patternToRegExp(r.path), method: r.method }));
    const methods = new Set(table.filter((r) => r.re.test(c.req.path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return [...methods].sort();
  };
}
