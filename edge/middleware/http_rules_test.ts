import assert from "node:assert/strict";
import { Hono } from "hono";
import type { Context } from "hono";
import {
  allowedMethods,
  declaredQueryParams,
  rejectUnknownQuery,
  requireJson,
  routeFirst,
} from "./http_rules.ts";

Deno.test("requireJson() admits JSON everywhere and other types only on their exempted path", async () => {
  const app = new Hono();
  app.use(requireJson({ allow: [{ path: "/upload", types: ["text/csv"] }] }));
  app.post("/*", (c) => c.text("ok"));
  const post = (path: string, type: string) =>
    app.request(path, { method: "POST", headers: { "content-type": type }, body: "x" });
  assert.equal((await post("/upload", "text/csv; charset=utf-8")).status, 200);
  assert.equal((await post("/upload", "application/json")).status, 200);
  assert.equal((await post("/other", "application/vnd.x+json")).status, 200);
  for (
    const [path, type] of [["/other", "text/csv"], ["/upload/x", "text/csv"], [
      "/upload",
      "text/plain",
    ]]
  ) {
    const res = await post(path!, type!);
    assert.equal(res.status, 415, `${path} ${type}`);
    assert.equal((await res.json()).code, "unsupported-media-type");
  }
  const refused = await post("/upload", "text/plain");
  assert.equal(refused.headers.get("accept-post"), "application/json, text/csv");
});

Deno.test("requireJson() lets a POST without a body through: actions without input", async () => {
  const app = new Hono();
  app.use(requireJson());
  app.post("/*", (c) => c.text("ok"));
  assert.equal((await app.request("/replay", { method: "POST" })).status, 200);
  const zero = await app.request("/replay", {
    method: "POST",
    headers: { "content-length": "0", "content-type": "text/plain" },
    body: "",
  });
  assert.equal(zero.status, 200);
  const text = await app.request("/replay", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "x",
  });
  assert.equal(text.status, 415);
  await text.body?.cancel();
});

Deno.test("requireJson() checks its exemptions once, listing every mistake", () => {
  assert.throws(
    () =>
      requireJson({
        allow: [
          { path: "/v1/leads/*", types: ["text/csv"] },
          { path: "/ok", types: [] },
          { path: "/ok", types: ["Text/CSV", "text/csv; charset=utf-8"] },
        ],
      }),
    (err: Error) => {
      assert.ok(err instanceof TypeError);
      for (
        const part of [
          '"/v1/leads/*"',
          "/ok lists no media types",
          "/ok is listed twice",
          '"Text/CSV"',
          '"text/csv; charset=utf-8"',
        ]
      ) assert.ok(err.message.includes(part), `no ${part} in ${err.message}`);
      return true;
    },
  );
  assert.doesNotThrow(() => requireJson());
});

/** Runs `f` on a Hono context of `method url` (the lookups only read the request). */
async function onRequest<T>(method: string, url: string, f: (c: Context) => T): Promise<T> {
  const app = new Hono();
  let out: T | undefined;
  app.all("*", (c) => {
    out = f(c);
    return c.body(null, 204);
  });
  await app.request(url, { method });
  return out as T;
}

Deno.test("allowedMethods() answers each path alike on every call, remembered or not", async () => {
  const at = allowedMethods([
    { method: "GET", path: "/v1/leads/:id" },
    { method: "PATCH", path: "/v1/leads/:id" },
    { method: "POST", path: "/v1/tasks" },
    { method: "ALL", path: "/v1/*" },
  ]);
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(await onRequest("GET", "/v1/leads/a", at), ["GET", "HEAD", "PATCH"]);
    assert.deepEqual(await onRequest("DELETE", "/v1/leads/b/", at), ["GET", "HEAD", "PATCH"]);
    assert.deepEqual(await onRequest("GET", "/v1/tasks", at), ["POST"]);
    assert.deepEqual(await onRequest("GET", "/v1/nothing", at), []);
  }
  // More distinct paths than the memo holds: answers stay right after it empties.
  for (let i = 0; i < 2_100; i++) {
    assert.deepEqual(await onRequest("GET", `/v1/leads/${i}`, at), ["GET", "HEAD", "PATCH"]);
  }
  assert.deepEqual(await onRequest("GET", "/v1/tasks", at), ["POST"]);
  // Shared between requests, so nobody may change it.
  assert.ok(Object.isFrozen(await onRequest("GET", "/v1/tasks", at)));
});

Deno.test("routeFirst() answers 405 with Allow and 404 the same way on repeated requests", async () => {
  const app = new Hono();
  const methodsAt = allowedMethods(app.routes);
  app.use(routeFirst({ methodsAt }));
  app.get("/v1/me", (c) => c.text("me"));
  for (let round = 0; round < 2; round++) {
    assert.equal((await app.request("/v1/me")).status, 200);
    const wrong = await app.request("/v1/me", { method: "DELETE" });
    assert.equal(wrong.status, 405);
    assert.equal(wrong.headers.get("allow"), "GET, HEAD");
    const missing = await app.request("/v1/nope");
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).code, "not-found");
  }
});

Deno.test("declaredQueryParams() finds the route by method (HEAD as GET) and path", async () => {
  const route = (method: string, path: string, query?: object) => ({
    type: "route",
    route: { method, path, ...(query ? { request: { query } } : {}) },
  });
  const at = declaredQueryParams(() => [
    route("get", "/v1/leads", { shape: { status: {}, limit: {} } }),
    route("post", "/v1/leads"),
    route("get", "/v1/leads/{id}", {}),
    { type: "schema" },
  ]);
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(await onRequest("GET", "/v1/leads", at), new Set(["status", "limit"]));
    assert.deepEqual(await onRequest("HEAD", "/v1/leads", at), new Set(["status", "limit"]));
    assert.deepEqual(await onRequest("POST", "/v1/leads", at), new Set());
    // A query schema that is not a plain object is left to the route's validator.
    assert.equal(await onRequest("GET", "/v1/leads/x", at), null);
    assert.equal(await onRequest("DELETE", "/v1/leads", at), null);
  }
});

Deno.test("rejectUnknownQuery() looks the route up only when the URL has a query", async () => {
  const app = new Hono();
  let lookups = 0;
  app.use(rejectUnknownQuery({
    paramsAt: () => {
      lookups++;
      return new Set(["status"]);
    },
  }));
  app.get("/v1/leads", (c) => c.text("ok"));
  assert.equal((await app.request("/v1/leads")).status, 200);
  assert.equal(lookups, 0);
  // A bare "?" carries no parameter: looked up, nothing to refuse.
  assert.equal((await app.request("/v1/leads?")).status, 200);
  assert.equal((await app.request("/v1/leads?status=new")).status, 200);
  assert.equal(lookups, 2);
  const unknown = await app.request("/v1/leads?stauts=new");
  assert.equal(unknown.status, 400);
  assert.deepEqual((await unknown.json()).invalid_fields.map((f: { field: string }) => f.field), [
    "query.stauts",
  ]);
  const empty = await app.request("/v1/leads?status=");
  assert.equal(empty.status, 400);
  assert.equal((await empty.json()).code, "invalid-request");
});
