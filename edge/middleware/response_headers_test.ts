import assert from "node:assert/strict";
import { Hono } from "hono";
import { mintDevToken } from "../../dev/token.ts";
import { useTestStack } from "../../testing/stack.ts";
import { signUnsubscribeToken } from "../../shared/email/unsubscribe.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";
import { PAGE_CSP, responseHeaders } from "./response_headers.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

Deno.test("responseHeaders(): CSP on HTML, no-store on authenticated JSON unless the route chose", async () => {
  const app = new Hono<{ Variables: { principal?: { sub: string } } }>();
  app.use(async (c, next) => {
    if (c.req.header("x-sub")) c.set("principal", { sub: c.req.header("x-sub")! });
    await next();
  });
  app.use(responseHeaders());
  app.get("/page", (c) => c.html("<p>hi</p>"));
  app.get(
    "/own",
    (c) => c.html("<p>hi</p>", 200, { "Content-Security-Policy": "script-src 'self'" }),
  );
  app.get("/json", (c) => c.json({ ok: true }));
  app.get("/cached", (c) => c.json({ ok: true }, 200, { "Cache-Control": "private, max-age=5" }));
  // A passed-through fetch Response has immutable headers.
  app.get("/fetched", () => Response.json({ ok: true }));
  const get = (path: string, sub?: string) =>
    app.request(path, { headers: sub ? { "x-sub": sub } : {} });

  assert.equal((await get("/page")).headers.get("content-security-policy"), PAGE_CSP);
  assert.equal(
    (await get("/own")).headers.get("content-security-policy"),
    "script-src 'self'",
    "a page's own policy is kept",
  );
  assert.equal((await get("/json")).headers.get("content-security-policy"), null);
  assert.equal((await get("/json")).headers.get("cache-control"), null, "anonymous JSON");
  assert.equal((await get("/json", "vera")).headers.get("cache-control"), "no-store");
  assert.equal((await get("/fetched", "vera")).headers.get("cache-control"), "no-store");
  assert.equal((await get("/cached", "vera")).headers.get("cache-control"), "private, max-age=5");
});

Deno.test({
  name: "every HTML page of the edge has a CSP without scripts; authenticated JSON is no-store",
  // Deps hold a Neon Pool (async WebSocket teardown).
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const queue = createQueue(deps.redis, TASK_CATALOG, {
    namespace: testNamespace("rh"),
  });
  const app = createApp(deps, { queue });
  const token = encodeURIComponent(
    signUnsubscribeToken(
      `csp-${crypto.randomUUID()}@unsub.example`,
      deps.config.email.unsubscribeSecret,
    ),
  );
  for (const path of ["/docs", `/v1/unsubscribe?token=${token}`]) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const csp = res.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/, path);
    assert.doesNotMatch(csp, /script-src/, `${path}: no script source at all`);
    await res.body?.cancel();
  }
  // The console is the one page with scripts: its own, from this origin only.
  const consolePage = await app.request("/console");
  assert.match(consolePage.headers.get("content-security-policy") ?? "", /script-src 'self';/);
  assert.doesNotMatch(consolePage.headers.get("content-security-policy") ?? "", /unsafe-inline/);
  await consolePage.body?.cancel();
  const bearer = `Bearer ${await mintDevToken(deps.config.auth, { sub: "sa:minerva" })}`;
  const me = await app.request("/v1/me", { headers: { authorization: bearer } });
  assert.equal(me.status, 200);
  assert.equal(me.headers.get("cache-control"), "no-store");
  await me.body?.cancel();
  const missing = await app.request("/v1/leads/00000000-0000-0000-0000-000000000000", {
    headers: { authorization: bearer },
  });
  assert.equal(missing.headers.get("cache-control"), "no-store", "problem+json too");
  await missing.body?.cancel();
});
