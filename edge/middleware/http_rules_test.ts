import assert from "node:assert/strict";
import { Hono } from "hono";
import { requireJson } from "./http_rules.ts";

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
