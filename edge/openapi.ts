/**
 * The OpenAPI 3.1 document, generated from the routes' zod schemas (no
 * hand-written spec), served at `/openapi.json`, and a self-contained API
 * reference page at `/docs` (edge/docs_page.ts).
 *
 * The routes declare what is theirs (body, query, path, their own headers);
 * {@linkcode completeDocument} adds what the gateway chain reads on every
 * route, so a client written from `/openapi.json` alone sends them too:
 * `X-Request-Id` everywhere and `Idempotency-Key` on every POST and PATCH
 * (edge/middleware/idempotency.ts; required where the route says so).
 * `Authorization` is the `bearer` security scheme (OpenAPI ignores a header
 * parameter of that name).
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app_env.ts";
import { type DocsSpec, renderDocsPage } from "./docs_page.ts";

/** Document metadata. */
export const OPENAPI_INFO = {
  openapi: "3.1.0",
  info: {
    title: "Pleasant Cove platform API",
    version: "1.0.0",
    description:
      "The edge gateway of the Pleasant Cove platform. Every error is application/problem+json (RFC 9457) with a stable `code`.",
  },
} as const;

/** Header parameters the gateway chain reads on every route (components.parameters). */
export const COMMON_PARAMETERS = {
  RequestId: {
    name: "X-Request-Id",
    in: "header",
    required: false,
    description: "Correlates the request with the access log and traces; echoed in the " +
      "response and in problem bodies (`request_id`). Generated when absent or not 1–255 " +
      "characters of letters, digits, `_`, `-`, `=`.",
    schema: { type: "string", maxLength: 255, pattern: "^[A-Za-z0-9_=-]+$" },
  },
  IdempotencyKey: {
    name: "Idempotency-Key",
    in: "header",
    required: false,
    description: "Makes a retry safe: the first response is stored and replayed " +
      "(`Idempotency-Replayed: true`) for the same key, caller and request; the same key with " +
      "another request is 422, a retry while the first runs is 409.",
    schema: { type: "string", minLength: 1, maxLength: 255 },
  },
} as const;

type Param = { $ref?: string; name?: string; in?: string };
type Op = { parameters?: Param[] };
/** The parts of an OpenAPI document {@linkcode completeDocument} touches. */
export type Doc = {
  paths?: Record<string, Record<string, Op>>;
  components?: Record<string, unknown> & { parameters?: Record<string, unknown> };
};

const ref = (name: keyof typeof COMMON_PARAMETERS) => ({
  $ref: `#/components/parameters/${name}`,
});

/** Adds the chain's headers to every operation of `doc` (in place) and returns it. */
export function completeDocument(doc: Doc): Doc {
  doc.components = { ...doc.components, parameters: { ...COMMON_PARAMETERS } };
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters ??= [];
      const declares = (name: string) =>
        params.some((p) => p.in === "header" && p.name?.toLowerCase() === name.toLowerCase());
      const isWrite = method === "post" || method === "patch";
      // A route that requires the key declares it (required: true) itself.
      if (isWrite && path.startsWith("/v1/") && !declares("Idempotency-Key")) {
        params.push(ref("IdempotencyKey"));
      }
      if (!declares("X-Request-Id")) params.push(ref("RequestId"));
    }
  }
  return doc;
}

/** Mounts `/openapi.json` and `/docs` on the root app. */
export function mountDocs(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "bearer", {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
  });
  // Built once, on first use (every route is registered by then): the routes
  // do not change after start-up, and generating the document per request
  // would let a flood of anonymous GETs cost real CPU.
  let spec: Doc | null = null;
  let json: string | null = null;
  let page: string | null = null;
  const document = () =>
    spec ??= completeDocument(
      app.getOpenAPI31Document(OPENAPI_INFO) as Doc,
    );
  app.get("/openapi.json", (c) => {
    json ??= JSON.stringify(document());
    return c.body(json, 200, { "Content-Type": "application/json" });
  });
  app.get("/docs", (c) => {
    page ??= renderDocsPage(document() as DocsSpec);
    return c.html(page);
  });
}
