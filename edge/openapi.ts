/**
 * The OpenAPI 3.1 document, generated from the routes' zod schemas (no
 * hand-written spec), served at `/openapi.json`, and a self-contained API
 * reference page at `/docs` (no CDN assets: it works offline and under a
 * strict CSP).
 *
 * @module
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "./app_env.ts";

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

const escape = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!,
  );

type Operation = {
  summary?: string;
  tags?: string[];
  parameters?: { name: string; in: string; required?: boolean; description?: string }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, { description?: string }>;
};

/** Renders the reference page from an OpenAPI document. */
export function renderDocsPage(
  spec: {
    info?: { title?: string; description?: string };
    paths?: Record<string, Record<string, Operation>>;
  },
): string {
  const sections: string[] = [];
  for (const [path, ops] of Object.entries(spec.paths ?? {})) {
    for (const [method, op] of Object.entries(ops)) {
      const params = (op.parameters ?? []).map((p) =>
        `<li><code>${escape(p.name)}</code> (${escape(p.in)}${p.required ? ", required" : ""})${
          p.description ? ` — ${escape(p.description)}` : ""
        }</li>`
      ).join("");
      const body = op.requestBody?.content?.["application/json"]?.schema;
      const responses = Object.entries(op.responses ?? {}).map(([status, r]) =>
        `<li><b>${escape(status)}</b> ${escape(r.description ?? "")}</li>`
      ).join("");
      sections.push(
        `<section><h2><span class="m ${escape(method)}">${
          escape(method.toUpperCase())
        }</span> <code>${escape(path)}</code></h2><p>${escape(op.summary ?? "")}</p>${
          params ? `<h3>Parameters</h3><ul>${params}</ul>` : ""
        }${
          body ? `<h3>Request body</h3><pre>${escape(JSON.stringify(body, null, 2))}</pre>` : ""
        }<h3>Responses</h3><ul>${responses}</ul></section>`,
      );
    }
  }
  const title = escape(spec.info?.title ?? "API");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1d2a33}
section{border-top:1px solid #d8e0e6;padding:.5rem 0}pre{background:#f4f7f9;padding:.75rem;overflow:auto}
.m{font:bold 13px monospace;padding:2px 6px;border-radius:3px;background:#e3ecf2}.post{background:#dff3e4}.get{background:#e0ecfb}
.patch{background:#fcf1dc}.delete{background:#fbe1e1}</style></head><body><h1>${title}</h1><p>${
    escape(spec.info?.description ?? "")
  }</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a></p>${
    sections.join("\n")
  }</body></html>`;
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
  let spec: ReturnType<typeof app.getOpenAPI31Document> | null = null;
  let json: string | null = null;
  let page: string | null = null;
  const document = () => spec ??= app.getOpenAPI31Document(OPENAPI_INFO);
  app.get("/openapi.json", (c) => {
    json ??= JSON.stringify(document());
    return c.body(json, 200, { "Content-Type": "application/json" });
  });
  app.get("/docs", (c) => {
    page ??= renderDocsPage(document() as Parameters<typeof renderDocsPage>[0]);
    return c.html(page);
  });
}
