import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { createApp } from "./app.ts";
import { PAGE_CSP } from "./middleware/response_headers.ts";
import { createLiveHub } from "./ws/hub.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Media = Record<string, { schema?: Record<string, unknown> }>;
type Operation = {
  operationId?: string;
  security?: Record<string, string[]>[];
  parameters?: { $ref?: string; name?: string; in?: string; required?: boolean }[];
  responses: Record<string, { content?: Media }>;
};
type Spec = {
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, { name: string; in: string }> };
};

/** Public routes: reached from an email link, no token (docs/api.md). */
const PUBLIC = new Set(["GET /v1/unsubscribe", "POST /v1/unsubscribe"]);

Deno.test({
  name: "the OpenAPI document describes every /v1 route completely",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const namespace = testNamespace("o");
    // Every optional route family is mounted (neither is started: only the routes are read).
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      namespace,
    });
    const live = createLiveHub({ redis: deps.redis, log: deps.log, namespace });
    const app = createApp(deps, { breakers, live });
    const spec: Spec = await (await app.request("/openapi.json")).json();
    const headerNames = (op: Operation) =>
      (op.parameters ?? []).map((p) => {
        const param = p.$ref ? spec.components.parameters[p.$ref.split("/").pop()!]! : p;
        return param.in === "header" ? param.name!.toLowerCase() : null;
      }).filter((n) => n !== null);

    const served = new Set(
      app.routes
        .filter((r) => r.method !== "ALL" && r.path.startsWith("/v1/"))
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );

    await t.step("every route the app serves has an operation with an operationId", () => {
      assert.ok(served.size >= 40, `only ${served.size} routes found`);
      const missing: string[] = [];
      for (const route of served) {
        const [method, path] = route.split(" ") as [string, string];
        const op = spec.paths[path]?.[method.toLowerCase()];
        if (!op) missing.push(`${route}: no operation`);
        else if (!/^[a-z][A-Za-z0-9]+$/.test(op.operationId ?? "")) {
          missing.push(`${route}: operationId ${JSON.stringify(op.operationId)}`);
        }
      }
      assert.deepEqual(missing, []);
    });

    const operations = Object.entries(spec.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op }))
    );

    await t.step("every operation is served, and operationIds are unique", () => {
      const stale = operations.filter(({ route }) => !served.has(route)).map((o) => o.route);
      assert.deepEqual(stale, []);
      const seen = new Map<string, string>();
      for (const { route, op } of operations) {
        const other = seen.get(op.operationId!);
        assert.equal(other, undefined, `${op.operationId} names ${other} and ${route}`);
        seen.set(op.operationId!, route);
      }
    });

    await t.step("every 2xx answer declares its body, JSON ones with a schema", () => {
      for (const { route, op } of operations) {
        const ok = Object.entries(op.responses).filter(([s]) => /^2\d\d$/.test(s));
        if (route === "GET /v1/ws") {
          assert.ok(op.responses["101"], "the upgrade answers 101");
          continue;
        }
        assert.ok(ok.length > 0, `${route} has no 2xx response`);
        for (const [status, r] of ok) {
          if (status === "204") continue;
          const types = Object.keys(r.content ?? {});
          assert.ok(types.length > 0, `${route} ${status} declares no content`);
          const schema = r.content?.["application/json"]?.schema;
          if (types.includes("application/json")) {
            assert.ok(schema && Object.keys(schema).length > 0, `${route} ${status}: no schema`);
          }
        }
      }
    });

    await t.step("every header the chain reads is a documented parameter", () => {
      for (const { route, op } of operations) {
        const headers = headerNames(op);
        assert.ok(headers.includes("x-request-id"), `${route}: X-Request-Id`);
        if (/^(POST|PATCH) /.test(route)) {
          assert.ok(headers.includes("idempotency-key"), `${route}: Idempotency-Key`);
        }
        // Authorization is the bearer scheme (OpenAPI ignores a parameter of that name).
        if (PUBLIC.has(route)) assert.deepEqual(op.security, [], route);
        else assert.deepEqual(op.security, [{ bearer: [] }], `${route}: security`);
      }
      // Where a route requires the key, the document says so.
      const enqueue = spec.paths["/v1/tasks"]!.post!.parameters!;
      assert.ok(enqueue.some((p) => p.name === "idempotency-key" && p.required === true));
    });

    await t.step("the WebSocket route is described: upgrade, topics, token, 101", () => {
      const ws = spec.paths["/v1/ws"]!.get!;
      assert.equal(ws.operationId, "connectLiveFeed");
      const names = (ws.parameters ?? []).map((p) => `${p.in}:${p.name}`);
      for (
        const p of ["query:topics", "query:access_token", "header:upgrade", "header:origin"]
      ) {
        assert.ok(names.includes(p), `${p} in ${names.join(", ")}`);
      }
      assert.ok(names.includes("header:sec-websocket-protocol"));
      for (const s of ["101", "400", "401", "403", "426", "429"]) {
        assert.ok(ws.responses[s], `GET /v1/ws ${s}`);
      }
    });

    await t.step("/docs shows resolved schemas, without script or outside asset", async () => {
      const res = await app.request("/docs");
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-security-policy"), PAGE_CSP);
      const page = await res.text();
      assert.doesNotMatch(page, /\$ref|<script|\ssrc=|<link|@import|url\(/i);
      // GET /v1/leads/{id}: the Lead's fields appear in its own section, not only a name.
      const section = page.slice(page.indexOf('<section id="getLead">'));
      const own = section.slice(0, section.indexOf("</section>"));
      for (const field of ["outreach_status", "lead_score", "recent_events"]) {
        assert.match(own, new RegExp(`<code>${field}</code>`), field);
      }
      assert.match(own, /not_interested/);
      for (const { op } of operations) {
        assert.match(page, new RegExp(`<section id="${op.operationId}">`));
      }
      assert.match(page, /<code>X-Request-Id<\/code>/);
    });
  },
});
