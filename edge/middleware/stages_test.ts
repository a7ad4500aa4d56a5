import assert from "node:assert/strict";
import { Hono, type MiddlewareHandler } from "hono";
import { stages } from "./stages.ts";

/** The same stages mounted one layer each (Hono) and as one layer; both must answer alike. */
function apps(list: MiddlewareHandler[]): Hono[] {
  const onError = (err: Error, c: Parameters<MiddlewareHandler>[0]) =>
    c.json({ error: err.message }, 500);
  const layered = new Hono();
  layered.use(...list);
  const fused = new Hono();
  fused.use(stages(list, onError));
  for (const app of [layered, fused]) {
    app.get("/ok", (c) => c.text("ok"));
    app.get("/throws", () => {
      throw new Error("handler");
    });
    app.onError(onError);
  }
  return [layered, fused];
}

Deno.test("stages() answers as the same middleware mounted one layer each", async () => {
  const order: string[] = [];
  const list: MiddlewareHandler[] = [
    async (c, next) => {
      order.push("a");
      await next();
      c.header("x-a", c.res.status.toString());
    },
    async (c, next) => {
      if (c.req.header("x-stop")) return c.text("stopped", 429);
      if (c.req.header("x-throw")) throw new Error("stage");
      await next();
    },
  ];
  const answers: string[][] = [];
  for (const app of apps(list)) {
    const seen: string[] = [];
    for (
      const [path, headers] of [["/ok", {}], ["/throws", {}], ["/ok", { "x-stop": "1" }], [
        "/ok",
        { "x-throw": "1" },
      ], ["/missing", {}]] as const
    ) {
      const res = await app.request(path, { headers });
      seen.push(`${path} ${res.status} ${res.headers.get("x-a")} ${await res.text()}`);
    }
    answers.push(seen);
  }
  assert.deepEqual(answers[1], answers[0]);
  assert.deepEqual(answers[0], [
    "/ok 200 200 ok",
    '/throws 500 500 {"error":"handler"}',
    "/ok 429 429 stopped",
    '/ok 500 500 {"error":"stage"}',
    "/missing 404 404 404 Not Found",
  ]);
  assert.equal(order.length, 10);
});
