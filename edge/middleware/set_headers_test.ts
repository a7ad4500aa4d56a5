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

Deno.test("setHeadersAfter() before any response behaves as c.header(): a response returned later does not get them", async () => {
  // The shape of limitFailedAuthentication: a 401 made first, then the limiter
  // run with a `next` that produces no response, then the 401 returned.
  const run = async (set: (c: Parameters<typeof setHeadersAfter>[0]) => void) => {
    const app = new Hono();
    app.use(async (c) => {
      const denied = c.json({ code: "invalid-token" }, 401);
      // Like the limiter, the headers are set after an await.
      await Promise.resolve();
      set(c);
      return denied;
    });
    app.get("/", (c) => c.text("never"));
    const res = await app.request("/");
    await res.body?.cancel();
    return { status: res.status, ratelimit: res.headers.get("ratelimit") };
  };
  const viaHono = await run((c) => c.header("RateLimit", "r"));
  const viaHelper = await run((c) => setHeadersAfter(c, [["RateLimit", "r"]]));
  assert.deepEqual(viaHelper, viaHono);
  assert.deepEqual(viaHelper, { status: 401, ratelimit: null });
});
