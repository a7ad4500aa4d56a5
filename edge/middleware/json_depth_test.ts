import assert from "node:assert/strict";
import { Hono } from "hono";
import { limitJsonDepth } from "./json_depth.ts";

function app() {
  const a = new Hono();
  a.use(limitJsonDepth(3));
  a.post("/", async (c) => c.json({ got: await c.req.json() }));
  a.post("/raw", async (c) => c.text(await c.req.text()));
  return a;
}

Deno.test("limitJsonDepth() refuses deeper JSON with 400 json-too-deep, passes the rest on intact", async () => {
  const deep = await app().request("/", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: '{"a":{"b":{"c":{}}}}',
  });
  assert.equal(deep.status, 400);
  assert.equal(deep.headers.get("content-type"), "application/problem+json");
  assert.equal((await deep.json()).code, "json-too-deep");

  const ok = await app().request("/", {
    method: "POST",
    headers: { "content-type": "application/merge-patch+json" },
    body: '{"a":{"b":"}}}}}[[[["}}',
  });
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), { got: { a: { b: "}}}}}[[[[" } } });

  const csv = await app().request("/raw", {
    method: "POST",
    headers: { "content-type": "text/csv" },
    body: "[[[[[[",
  });
  assert.equal(await csv.text(), "[[[[[[");
});

Deno.test("limitJsonDepth() validates its option once", () => {
  assert.throws(() => limitJsonDepth(0), RangeError);
});
