import assert from "node:assert/strict";
import { Hono } from "hono";
import { setHeadersAfter } from "./set_headers.ts";

Deno.test("setHeadersAfter() adds headers to the finished response without replacing it", async () => {
  const app = new Hono();
  let before: Response | undefined;
  let after: Response | undefined;
  app.use(async (c, next) => {
    await next();
    before = c.res;
    setHeadersAfter(c, [["RateLimit", '"default";r=9;t=60'], ["X-Two", "2"]]);
    after = c.res;
  });
  app.get("/", (c) => c.json({ ok: true }, 201, { "X-One": "1" }));
  const res = await app.request("/");
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { ok: true });
  assert.equal(res.headers.get("ratelimit"), '"default";r=9;t=60');
  assert.equal(res.headers.get("x-one"), "1");
  assert.equal(res.headers.get("x-two"), "2");
  assert.equal(after, before, "set in place: no copy of the response");
});

Deno.test("setHeadersAfter() copies a response with immutable headers once, body and status kept", async () => {
  const app = new Hono();
  let copies = 0;
  app.use(async (c, next) => {
    await next();
    const before = c.res;
    setHeadersAfter(c, [["RateLimit", "r"], ["X-Two", "2"]]);
    if (c.res !== before) copies++;
  });
  // Response.redirect() has immutable headers, like a fetched Response.
  app.get("/", () => Response.redirect("http://localhost/elsewhere", 307));
  const res = await app.request("/");
  assert.equal(copies, 1);
  assert.equal(res.status, 307);
  assert.equal(res.headers.get("location"), "http://localhost/elsewhere");
  assert.equal(res.headers.get("ratelimit"), "r");
  assert.equal(res.headers.get("x-two"), "2");
  await res.body?.cancel();
});

Deno.test("setHeadersAfter() with no headers leaves the response alone", async () => {
  const app = new Hono();
  app.use(async (c, next) => {
    await next();
    setHeadersAfter(c, []);
  });
  app.get("/", () => Response.redirect("http://localhost/x", 302));
  const res = await app.request("/");
  assert.equal(res.status, 302);
  await res.body?.cancel();
});
