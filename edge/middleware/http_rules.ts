/**
 * HTTP-level request rules that come before any route: JSON-only request
 * bodies (415; a few paths are exempted for named media types), body size
 * (413), and routing before authorization: 404 for a path no route serves,
 * 405 with `Allow` for a known path called with the wrong method.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { problem } from "../problem.ts";
import { readingBody } from "../request_body.ts";

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
const MEDIA_TYPE = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/;
const PATH = /^(\/[A-Za-z0-9._~-]+)+$/;

/** A route that also accepts bodies of other media types than JSON. */
export interface MediaTypeExemption {
  /** Exact request path, e.g. `/v1/leads/import` (no patterns: exemptions stay explicit). */
  path: string;
  /** Lowercase media types (no parameters) accepted there besides JSON, e.g. `text/csv`. */
  types: readonly string[];
}

/** Options of {@linkcode requireJson}. */
export interface RequireJsonOptions {
  /** Routes that accept more than JSON. @default [] */
  allow?: readonly MediaTypeExemption[];
}

function exemptionTable(allow: readonly MediaTypeExemption[]): Map<string, ReadonlySet<string>> {
  const problems: string[] = [];
  const table = new Map<string, Set<string>>();
  for (const { path, types } of allow) {
    if (!PATH.test(path)) problems.push(`path ${JSON.stringify(path)} must be an exact /v1/… path`);
    if (table.has(path)) problems.push(`path ${path} is listed twice`);
    if (types.length === 0) problems.push(`path ${path} lists no media types`);
    for (const type of types) {
      if (!MEDIA_TYPE.test(type)) {
        problems.push(`path ${path}: ${JSON.stringify(type)} is not a lowercase type/subtype`);
      }
    }
    table.set(path, new Set(types));
  }
  if (problems.length > 0) {
    throw new TypeError(`Invalid requireJson() exemptions: ${problems.join("; ")}`);
  }
  return table;
}

/**
 * 415 unless a request with a body declares JSON, or a media type its path is
 * exempted for (`allow`, checked here once). An empty body needs no type.
 */
export function requireJson(options: RequireJsonOptions = {}): MiddlewareHandler {
  const exempt = exemptionTable(options.allow ?? []);
  return async function requireJson(c, next) {
    // An action that takes no input may be POSTed with no body at all (and no
    // Content-Type); a route that needs a body then says so as a 400.
    const empty = c.req.raw.body === null || c.req.header("content-length") === "0";
    if (BODY_METHODS.has(c.req.method) && !empty) {
      const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
      const extra = exempt.get(c.req.path);
      if (
        type !== "application/json" && !/^application\/[\w.+-]+\+json$/.test(type) &&
        !extra?.has(type)
      ) {
        const accepted = ["application/json", ...(extra ?? [])];
        return problem(c, {
          code: "unsupported-media-type",
          status: 415,
          title: "Unsupported content type",
          detail: `Send the body as ${accepted.join(" or ")} (got ${
            type ? JSON.stringify(type) : "no Content-Type"
          })`,
        }, { "Accept-Post": accepted.join(", ") });
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
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: (c) =>
      problem(c, {
        code: "payload-too-large",
        status: 413,
        title: "Request body too large",
        detail: `The limit is ${maxBytes} bytes`,
      }),
  });
  // A body without Content-Length is read here, before the next stage: a connection gone
  // meanwhile is a 503 (edge/request_body.ts). Later stages' errors never reach this frame
  // (Hono answers them in the stage that threw).
  return function limitBody(c, next) {
    return readingBody(() => limit(c, next));
  };
}

/** Compiles Hono route patterns (`/v1/tasks/:id`) to matchers. */
function patternToRegExp(path: string): RegExp {
  const body = path.split("/").map((seg) =>
    seg.startsWith(":") ? "[^/]+" : seg === "*" ? ".*" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  ).join("/");
  return new RegExp(`^${body}/?$`);
}

/**
 * Paths remembered by the per-path lookups below. The answer for a path never
 * changes once the routes are registered, and walking every route's pattern
 * on each request was a measurable part of the chain (docs/benchmarks.md,
 * "Where the edge's µs go"); the bound keeps paths carrying ids from growing
 * the memory without limit (the table is emptied when full).
 */
const PATH_CACHE_ENTRIES = 1_024;

/** A bounded memo of `compute(key)`: cleared when it holds `PATH_CACHE_ENTRIES`. */
function memoByKey<T>(compute: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    const hit = cache.get(key);
    if (hit !== undefined || cache.has(key)) return hit as T;
    const value = compute(key);
    if (cache.size >= PATH_CACHE_ENTRIES) cache.clear();
    cache.set(key, value);
    return value;
  };
}

/**
 * For the notFound handler: the methods the app serves at this path, so a
 * wrong method gets 405 + Allow instead of 404. The answer is shared between
 * requests (frozen): read it, don't change it.
 */
export function allowedMethods(
  routes: { method: string; path: string }[],
): (c: Context) => readonly string[] {
  let table: { re: RegExp; method: string }[] | null = null;
  const at = memoByKey((path) => {
    table ??= routes
      .filter((r) => r.method !== "ALL" && !r.path.endsWith("*"))
      .map((r) => ({ re: patternToRegExp(r.path), method: r.method }));
    const methods = new Set(table.filter((r) => r.re.test(path)).map((r) => r.method));
    if (methods.has("GET")) methods.add("HEAD");
    return Object.freeze([...methods].sort());
  });
  return (c) => at(c.req.path);
}

/** The 404 or 405 (with `Allow`) of a request no route serves; `allow` as {@linkcode allowedMethods} gives it. */
export function noRoute(c: Context, allow: readonly string[]): Response {
  if (allow.length > 0) {
    return problem(c, {
      code: "method-not-allowed",
      status: 405,
      title: "Method not allowed",
      detail: `${c.req.method} is not supported here; use ${allow.join(", ")}`,
    }, { Allow: allow.join(", ") });
  }
  return problem(c, {
    code: "not-found",
    status: 404,
    title: "Not found",
    detail: `No route for ${c.req.method} ${c.req.path}`,
  });
}

/** Options of {@linkcode routeFirst}. */
export interface RouteFirstOptions {
  /** The methods served at the request's path ({@linkcode allowedMethods} of the app's routes). */
  methodsAt: (c: Context) => readonly string[];
  /**
   * Paths served by catch-all handlers (the upstream proxy's prefixes), which
   * the route table cannot list: every method passes. @default none
   */
  passthrough?: (path: string) => boolean;
}

/**
 * Routes before authorizing: a path no route serves is 404 and a wrong method
 * 405 with `Allow` for every caller, instead of a 403 from a policy that
 * knows nothing about it. Mount it between authentication and authorization,
 * so that anonymous callers still learn nothing but 401.
 */
export function routeFirst(options: RouteFirstOptions): MiddlewareHandler {
  const { methodsAt, passthrough = () => false } = options;
  return async function routeFirst(c, next) {
    if (!passthrough(c.req.path)) {
      const allow = methodsAt(c);
      if (!allow.includes(c.req.method)) return noRoute(c, allow);
    }
    await next();
  };
}

/** The query parameters a route declares, or null when it declares none it could check. */
export type QueryParamsAt = (c: Context) => ReadonlySet<string> | null;

/** Options of {@linkcode rejectUnknownQuery}. */
export interface RejectUnknownQueryOptions {
  /** The query parameters the request's route declares (`null`: the route is not described). */
  paramsAt: QueryParamsAt;
}

/**
 * 400 `invalid-request` naming every query parameter the route does not
 * declare (bodies are strict already): a misspelt filter (`?stauts=new`)
 * would otherwise be ignored and answer everything. An empty value
 * (`?status=`) is the same 400 on every route (docs/api.md, "Query
 * parameters"): read as "no filter" by one route and as "match the empty
 * string" by another, it would mean different things. Routes without an
 * OpenAPI description (proxied upstreams, the WebSocket upgrade) pass.
 */
export function rejectUnknownQuery(options: RejectUnknownQueryOptions): MiddlewareHandler {
  return async function rejectUnknownQuery(c, next) {
    // No query string, nothing to check: skips the route lookup and URL parse.
    const known = c.req.url.includes("?") ? options.paramsAt(c) : null;
    if (known !== null) {
      const params = new URL(c.req.url).searchParams;
      const names = [...new Set(params.keys())];
      const unknown = names.filter((n) => !known.has(n)).sort();
      const accepted = [...known].sort();
      const fields = [
        ...unknown.map((n) => ({
          field: `query.${n}`,
          message: accepted.length > 0
            ? `unknown parameter (this route takes ${accepted.join(", ")})`
            : "unknown parameter (this route takes none)",
        })),
        ...names.filter((n) => known.has(n) && params.getAll(n).includes("")).sort().map((n) => ({
          field: `query.${n}`,
          message: "empty value (leave the parameter out instead)",
        })),
      ];
      if (fields.length > 0) {
        return problem(c, {
          code: "invalid-request",
          status: 400,
          title: "The request is invalid",
          detail: fields.map((f) => `${f.field}: ${f.message}`).join("; "),
          invalid_fields: fields,
        });
      }
    }
    await next();
  };
}

/**
 * For {@linkcode rejectUnknownQuery}: the declared query parameters of the
 * route matching a request, read from the OpenAPI route definitions (built
 * once, at the first request, when every route is registered).
 */
export function declaredQueryParams(
  definitions: () => readonly unknown[],
): QueryParamsAt {
  let table: { method: string; re: RegExp; params: Set<string> | null }[] | null = null;
  const at = memoByKey((key) => {
    // "METHOD /path": methods hold no space.
    const space = key.indexOf(" ");
    const method = key.slice(0, space);
    const path = key.slice(space + 1);
    table ??= definitions().flatMap((d) => {
      const def = d as {
        type?: string;
        route?: { method: string; path: string; request?: { query?: { shape?: object } } };
      };
      if (def.type !== "route" || !def.route) return [];
      const query = def.route.request?.query;
      return [{
        method: def.route.method.toUpperCase(),
        re: patternToRegExp(def.route.path.replace(/\{([^}]+)\}/g, ":$1")),
        // A query schema that is not a plain object (refined, piped) is not
        // checked here: its own validation decides.
        params: query === undefined
          ? new Set<string>()
          : query.shape
          ? new Set(Object.keys(query.shape))
          : null,
      }];
    });
    const hit = table.find((r) => r.method === method && r.re.test(path));
    return hit?.params ?? null;
  });
  return (c) => at(`${c.req.method === "HEAD" ? "GET" : c.req.method} ${c.req.path}`);
}
