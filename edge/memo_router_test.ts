import assert from "node:assert/strict";
import { Hono } from "hono";
import { SmartRouter } from "hono/router/smart-router";
import { RegExpRouter } from "hono/router/reg-exp-router";
import { TrieRouter } from "hono/router/trie-router";
import type { Result, Router } from "hono/router";
import { memoRouter } from "./memo_router.ts";

function counting<T>(inner: Router<T>): Router<T> & { calls: number } {
  const r = {
    name: inner.name,
    calls: 0,
    add: (m: string, p: string, h: T) => inner.add(m, p, h),
    match: (m: string, p: string): Result<T> => {
      r.calls++;
      return inner.match(m, p);
    },
  };
  return r;
}

Deno.test("memoRouter answers as its router does, asking it once per method and path", async () => {
  const inner = counting(new SmartRouter({ routers: [new RegExpRouter(), new TrieRouter()] }));
  // The test router is untyped; Hono types it by its handlers.
  const app = new Hono({ router: memoRouter(inner, 3) as never });
  app.use("/v1/*", async (c, next) => {
    await next();
    c.header("x-mw", "1");
  });
  app.get("/v1/items/:id", (c) => c.text(`item ${c.req.param("id")}`));
  app.post("/v1/items/:id", (c) => c.text(`post ${c.req.param("id")}`));
  app.get("/health", (c) => c.text("ok"));
  const text = async (path: string, method = "GET") => {
    const res = await app.request(path, { method });
    return `${res.status} ${await res.text()} ${res.headers.get("x-mw")}`;
  };
  for (let i = 0; i < 3; i++) {
    assert.equal(await text("/v1/items/a"), "200 item a 1");
    assert.equal(await text("/v1/items/b"), "200 item b 1");
    assert.equal(await text("/v1/items/a", "POST"), "200 post a 1");
  }
  assert.equal(inner.calls, 3, "one match per method and path");
  assert.equal(await text("/health"), "200 ok null");
  assert.equal(await text("/v1/nope"), "404 404 Not Found 1");
  // Past 3 entries the memo started over; answers stay right.
  assert.equal(await text("/v1/items/a"), "200 item a 1");
  assert.equal(inner.calls, 6);
});
