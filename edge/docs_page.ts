/**
 * The `/docs` page: the OpenAPI document rendered as one self-contained HTML
 * page (no script, no CDN asset, inline styles only: it works offline and
 * under the edge's page CSP, edge/middleware/response_headers.ts).
 *
 * Schemas are shown resolved: a `$ref` is expanded in place (its name is
 * kept as a link to its entry in the schema list at the end), so a reader
 * sees every field of a request and a response where the operation is
 * described. A schema that refers to itself is expanded once, then linked.
 *
 * @module
 */

/** A JSON Schema object as the OpenAPI 3.1 generator writes it (the subset rendered). */
export type Schema = {
  $ref?: string;
  type?: string | string[];
  format?: string;
  description?: string;
  enum?: unknown[];
  const?: unknown;
  default?: unknown;
  example?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
};

type Parameter = {
  $ref?: string;
  name: string;
  in: string;
  required?: boolean;
  description?: string;
  schema?: Schema;
};

type Media = Record<string, { schema?: Schema }>;

type Operation = {
  operationId?: string;
  summary?: string;
  description?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content?: Media };
  responses?: Record<
    string,
    { description?: string; headers?: Record<string, { description?: string }>; content?: Media }
  >;
};

/** The parts of an OpenAPI document the page shows. */
export type DocsSpec = {
  info?: { title?: string; description?: string; version?: string };
  paths?: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema>; parameters?: Record<string, Parameter> };
};

const MAX_DEPTH = 8;

/** HTML-escapes text for element content and quoted attributes. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]!,
  );
}

const refName = (ref: string) => ref.slice(ref.lastIndexOf("/") + 1);
const anchor = (name: string) => `schema-${name.replace(/[^\w-]/g, "_")}`;

function typeLabel(s: Schema): string {
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  const named = types.map((t) =>
    t === "array" && s.items ? "array" : t === "string" && s.format ? `string (${s.format})` : t
  );
  if (s.const !== undefined) named.push(`constant ${JSON.stringify(s.const)}`);
  return named.length > 0 ? named.join(" | ") : s.properties ? "object" : "";
}

function constraints(s: Schema): string[] {
  const out: string[] = [];
  if (s.enum) out.push(`one of ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  const bounds: [keyof Schema, string][] = [
    ["minimum", "≥"],
    ["exclusiveMinimum", ">"],
    ["maximum", "≤"],
    ["exclusiveMaximum", "<"],
  ];
  for (const [key, sign] of bounds) if (s[key] !== undefined) out.push(`${sign} ${s[key]}`);
  const range = (min?: number, max?: number) =>
    min === undefined ? `≤ ${max}` : max === undefined ? `≥ ${min}` : `${min}…${max}`;
  if (s.minLength !== undefined || s.maxLength !== undefined) {
    out.push(`length ${range(s.minLength, s.maxLength)}`);
  }
  if (s.minItems !== undefined || s.maxItems !== undefined) {
    out.push(`${range(s.minItems, s.maxItems)} items`);
  }
  if (s.pattern !== undefined) out.push(`pattern ${s.pattern}`);
  if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
  if (s.example !== undefined) out.push(`example ${JSON.stringify(s.example)}`);
  return out;
}

/** Renders a schema with its `$ref`s resolved against `schemas`. */
export function renderSchema(
  schema: Schema,
  schemas: Record<string, Schema>,
  trail: readonly string[] = [],
): string {
  if (schema.$ref !== undefined) {
    const name = refName(schema.$ref);
    const link = `<a class="ref" href="#${anchor(name)}">${escapeHtml(name)}</a>`;
    const target = schemas[name];
    // Once per branch: a recursive schema would otherwise never end.
    if (target === undefined || trail.includes(name) || trail.length >= MAX_DEPTH) return link;
    return `${link} ${renderSchema(target, schemas, [...trail, name])}`;
  }
  const parts: string[] = [];
  const label = typeLabel(schema);
  if (label) parts.push(`<span class="t">${escapeHtml(label)}</span>`);
  if (schema.description) parts.push(`— ${escapeHtml(schema.description)}`);
  const limits = constraints(schema);
  if (limits.length > 0) parts.push(`<span class="c">${escapeHtml(limits.join("; "))}</span>`);
  if (schema.items) parts.push(`of ${renderSchema(schema.items, schemas, trail)}`);
  for (const [key, word] of [["anyOf", "any of"], ["oneOf", "one of"], ["allOf", "all of"]]) {
    const list = schema[key as "anyOf"];
    if (!list) continue;
    parts.push(
      `${word}:<ol>${list.map((s) => `<li>${renderSchema(s, schemas, trail)}</li>`).join("")}</ol>`,
    );
  }
  if (schema.properties) {
    const required = new Set(schema.required ?? []);
    const rows = Object.entries(schema.properties).map(([name, prop]) =>
      `<li><code>${escapeHtml(name)}</code>${
        required.has(name) ? ' <span class="req">required</span>' : ""
      } ${renderSchema(prop, schemas, trail)}</li>`
    );
    parts.push(`<ul class="props">${rows.join("")}</ul>`);
  }
  const extra = schema.additionalProperties;
  if (extra === false) parts.push('<span class="c">no other fields</span>');
  else if (typeof extra === "object" && Object.keys(extra).length > 0) {
    parts.push(`other fields: ${renderSchema(extra, schemas, trail)}`);
  }
  return parts.join(" ") || '<span class="t">any</span>';
}

function renderParameter(p: Parameter, spec: DocsSpec): string {
  const param = p.$ref ? spec.components?.parameters?.[refName(p.$ref)] ?? p : p;
  const schemas = spec.components?.schemas ?? {};
  const schema = param.schema
    ? renderSchema(
      // The parameter's own description is shown once, not twice.
      { ...param.schema, ...(param.description ? { description: undefined } : {}) },
      schemas,
    )
    : "";
  return `<tr><td><code>${escapeHtml(param.name)}</code></td><td>${escapeHtml(param.in)}${
    param.required ? ', <span class="req">required</span>' : ""
  }</td><td>${escapeHtml(param.description ?? "")} ${schema}</td></tr>`;
}

function renderContent(content: Media | undefined, schemas: Record<string, Schema>): string {
  return Object.entries(content ?? {}).map(([type, media]) => {
    const schema = media.schema;
    // Every error shares one shape: a link instead of the same fields fifty times.
    const body = type === "application/problem+json" && schema?.$ref
      ? `<a class="ref" href="#${anchor(refName(schema.$ref))}">${
        escapeHtml(refName(schema.$ref))
      }</a>`
      : schema
      ? renderSchema(schema, schemas)
      : "";
    return `<div class="media"><code>${escapeHtml(type)}</code> ${body}</div>`;
  }).join("");
}

function renderOperation(path: string, method: string, op: Operation, spec: DocsSpec): string {
  const schemas = spec.components?.schemas ?? {};
  const id = op.operationId ?? `${method}-${path}`;
  const params = (op.parameters ?? []).map((p) => renderParameter(p, spec)).join("");
  const auth = (op.security ?? []).length > 0
    ? "<p>Requires <code>Authorization: Bearer &lt;jwt&gt;</code>.</p>"
    : "<p>No token needed.</p>";
  const body = op.requestBody
    ? `<h3>Request body${op.requestBody.required ? "" : " (optional)"}</h3>${
      renderContent(op.requestBody.content, schemas)
    }`
    : "";
  const responses = Object.entries(op.responses ?? {}).map(([status, r]) => {
    const headers = Object.entries(r.headers ?? {}).map(([name, h]) =>
      `<div>Header <code>${escapeHtml(name)}</code> ${escapeHtml(h.description ?? "")}</div>`
    ).join("");
    return `<li><b>${escapeHtml(status)}</b> ${escapeHtml(r.description ?? "")}${headers}${
      renderContent(r.content, schemas)
    }</li>`;
  }).join("");
  return `<section id="${escapeHtml(id)}"><h2><span class="m ${escapeHtml(method)}">${
    escapeHtml(method.toUpperCase())
  }</span> <code>${escapeHtml(path)}</code></h2><p>${escapeHtml(op.summary ?? "")}</p>${
    op.description ? `<p>${escapeHtml(op.description)}</p>` : ""
  }<p class="c">operationId <code>${escapeHtml(op.operationId ?? "")}</code></p>${auth}${
    params
      ? `<h3>Parameters</h3><table><tr><th>name</th><th>in</th><th>description</th></tr>${params}</table>`
      : ""
  }${body}<h3>Responses</h3><ul class="responses">${responses}</ul></section>`;
}

const STYLE =
  `body{font:15px/1.5 system-ui,sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;color:#1d2a33}
section{border-top:1px solid #d8e0e6;padding:.5rem 0}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #eef2f5}
ul.props{margin:.2rem 0;padding-left:1.2rem;border-left:2px solid #e3ecf2}.t{color:#3b5b75;font-family:monospace}.c{color:#5f6f7a;font-size:13px}
.req{color:#a4361b;font-size:12px}.media{margin:.2rem 0 .2rem .5rem}a.ref{font-family:monospace}
.m{font:bold 13px monospace;padding:2px 6px;border-radius:3px;background:#e3ecf2}.post{background:#dff3e4}.get{background:#e0ecfb}
.patch{background:#fcf1dc}.delete{background:#fbe1e1}`;

/** Renders the reference page from an OpenAPI document. */
export function renderDocsPage(spec: DocsSpec): string {
  const schemas = spec.components?.schemas ?? {};
  const operations: string[] = [];
  const index: string[] = [];
  for (const [path, ops] of Object.entries(spec.paths ?? {})) {
    for (const [method, op] of Object.entries(ops)) {
      operations.push(renderOperation(path, method, op, spec));
      index.push(
        `<li><a href="#${escapeHtml(op.operationId ?? `${method}-${path}`)}">${
          escapeHtml(method.toUpperCase())
        } ${escapeHtml(path)}</a> ${escapeHtml(op.summary ?? "")}</li>`,
      );
    }
  }
  const schemaList = Object.entries(schemas).map(([name, schema]) =>
    `<section id="${anchor(name)}"><h3>${escapeHtml(name)}</h3>${
      renderSchema(schema, schemas, [name])
    }</section>`
  ).join("\n");
  const title = escapeHtml(spec.info?.title ?? "API");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head><body><h1>${title}</h1><p>${
    escapeHtml(spec.info?.description ?? "")
  }</p><p>Machine-readable: <a href="/openapi.json">/openapi.json</a>. Schemas: <a href="#schemas">at the end</a>.</p><ul>${
    index.join("")
  }</ul>${operations.join("\n")}<h2 id="schemas">Schemas</h2>${schemaList}</body></html>`;
}
