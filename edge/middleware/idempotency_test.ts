import assert from "node:assert/strict";
import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { Redis } from "@upstash/redis";
import { useTestStack } from "../../testing/stack.ts";
import { createRedis } from "../../shared/deps.ts";
import { AppError, DependencyUnavailableError } from "../../shared/errors.ts";
import { ack, claim } from "../../shared/queue/leases.ts";
import { testQueue } from "../../testing/queue.ts";
import type { AppEnv } from "../app_env.ts";
import { requestFingerprint } from "../idempotency/request.ts";
import { createIdempotencyStore, idempotencyKeys } from "../idempotency/store.ts";
import { problem } from "../problem.ts";
import { idempotency, type IdempotencyOptions, type IdempotencyVariables } from "./idempotency.ts";
import { testNamespace } from "../../testing/namespace.ts";

type Env = AppEnv & { Variables: IdempotencyVariables };
type App = Hono<Env>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The app's request id + error mapping, a fake authentication and the middleware under test. */
function testApp(redis: Redis, options: Partial<IdempotencyOptions>, routes: (app: App) => void) {
  const namespace = testNamespace("t");
  const app = new Hono<Env>();
  app.use(requestId({ headerName: "X-Request-Id" }));
  app.use(async (c, next) => {
    const sub = c.req.header("X-Test-Sub");
    if (sub) c.set("principal", { kind: "user", sub, roles: [] });
    await next();
  });
  app.use("/v1/*", idempotency({ redis, ttlMs: 60_000, namespace, ...options }));
  routes(app);
  app.onError((err, c) => {
    if (err instanceof AppError) {
      return problem(c, { code: err.code, status: err.status, title: err.message });
    }
    return problem(c, { code: "internal", status: 500, title: "Internal server error" });
  });
  return { app, namespace };
}

interface Send {
  key?: string;
  body?: string | Uint8Array<ArrayBuffer>;
  sub?: string;
  method?: string;
  type?: string;
}

async function send(app: App, path: string, s: Send = {}): Promise<Response> {
  const headers: Record<string, string> = { "Content-Type": s.type ?? "application/json" };
  if (s.key !== undefined) headers["Idempotency-Key"] = s.key;
  if (s.sub !== undefined) headers["X-Test-Sub"] = s.sub;
  const method = s.method ?? "POST";
  const body = method === "GET" ? undefined : s.body ?? "{}";
  return await app.request(path, { method, headers, body });
}

/** A route that counts its executions and echoes the parsed JSON body. */
function counting(status = 201) {
  const counter = { calls: 0 };
  const route = (app: App) =>
    app.post("/v1/orders", async (c) => {
      counter.calls++;
      const input = await c.req.json();
      return c.json({ n: counter.calls, input }, status as 201, {
        Location: `/v1/orders/${counter.calls}`,
        "X-Not-Stored": "1",
      });
    });
  return { counter, route };
}

Deno.test("idempotency() against a real Redis", async (t) => {
  await using stack = await useTestStack();
  const redis = createRedis(stack.settings.redis);

  await t.step("a retry replays status, body and headers; the handler runs once", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, {}, route);
    const first = await send(app, "/v1/orders", { key: "k1", body: '{"b":[1,2],"a":"x"}' });
    assert.equal(first.status, 201);
    assert.equal(first.headers.get("idempotency-replayed"), null);
    const firstBody = await first.json();
    assert.deepEqual(firstBody, { n: 1, input: { b: [1, 2], a: "x" } });

    // Same data, other key order and spacing: still the same request.
    const retry = await send(app, "/v1/orders", { key: "k1", body: '{ "a": "x", "b": [1, 2] }' });
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get("idempotency-replayed"), "true");
    assert.equal(retry.headers.get("location"), "/v1/orders/1");
    assert.match(retry.headers.get("content-type") ?? "", /^application\/json/);
    assert.equal(retry.headers.get("x-not-stored"), null);
    assert.match(retry.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    assert.notEqual(retry.headers.get("x-request-id"), first.headers.get("x-request-id"));
    assert.deepEqual(await retry.json(), firstBody);
    assert.equal(counter.calls, 1);
  });

  await t.step("a 5xx response and a thrown error (500) are stored and replayed", async () => {
    let calls = 0;
    const { app } = testApp(redis, {}, (app) => {
      app.post("/v1/fails", (c) => c.json({ calls: ++calls }, 500));
      app.post("/v1/throws", () => {
        calls++;
        throw new Error("boom after a side effect");
      });
    });
    for (const path of ["/v1/fails", "/v1/throws"]) {
      const first = await send(app, path, { key: "k5" });
      assert.equal(first.status, 500);
      const body = await first.text();
      const retry = await send(app, path, { key: "k5" });
      assert.equal(retry.status, 500);
      assert.equal(retry.headers.get("idempotency-replayed"), "true");
      // The replayed problem keeps the first request's id: the one to look up in the logs.
      assert.equal(await retry.text(), body);
    }
    assert.equal(calls, 2);
  });

  await t.step("thrown 4xx errors, 429 and 503 are not stored: a retry runs again", async () => {
    const calls: Record<string, number> = { invalid: 0, busy: 0, down: 0 };
    const { app } = testApp(redis, {}, (app) => {
      app.post("/v1/invalid", () => {
        calls.invalid!++;
        throw new AppError("validation-failed", 400, "Invalid order");
      });
      app.post("/v1/busy", (c) => c.json({ n: ++calls.busy! }, 429));
      app.post("/v1/down", () => {
        calls.down!++;
        throw new DependencyUnavailableError("Postgres is down");
      });
    });
    for (const [path, status] of [["/v1/invalid", 400], ["/v1/busy", 429], ["/v1/down", 503]]) {
      for (let i = 0; i < 2; i++) {
        const res = await send(app, path as string, { key: "k4" });
        assert.equal(res.status, status);
        assert.equal(res.headers.get("idempotency-replayed"), null);
        await res.body?.cancel();
      }
    }
    assert.deepEqual(calls, { invalid: 2, busy: 2, down: 2 });
  });

  await t.step("a retry while the first request runs gets 409 with Retry-After", async () => {
    let entered!: () => void;
    let open!: () => void;
    const inHandler = new Promise<void>((r) => entered = r);
    const gate = new Promise<void>((r) => open = r);
    let calls = 0;
    // A lock shorter than the wait proves the heartbeat keeps a slow request's claim.
    const { app } = testApp(redis, { lockTtlMs: 60 }, (app) =>
      app.post("/v1/slow", async (c) => {
        // A second execution answers at once, so a lapsed lock fails the test instead of hanging it.
        if (++calls > 1) return c.json({ duplicate: true }, 201);
        entered();
        await gate;
        return c.json({ done: true }, 201);
      }));
    const first = send(app, "/v1/slow", { key: "k409" });
    await inHandler;
    await sleep(150);
    const second = await send(app, "/v1/slow", { key: "k409" });
    assert.equal(second.status, 409);
    assert.equal(second.headers.get("retry-after"), "1");
    assert.equal(second.headers.get("content-type"), "application/problem+json");
    assert.equal((await second.json()).code, "idempotency-request-in-progress");
    open();
    assert.equal((await first).status, 201);
    const third = await send(app, "/v1/slow", { key: "k409" });
    assert.equal(third.headers.get("idempotency-replayed"), "true");
    assert.deepEqual(await third.json(), { done: true });
    assert.equal(calls, 1);
  });

  await t.step("the same key with another body or path is 422", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, {}, (app) => {
      route(app);
      app.patch("/v1/orders/:id", (c) => c.json({ id: c.req.param("id") }));
    });
    await (await send(app, "/v1/orders", { key: "k422", body: '{"a":1}' })).body?.cancel();
    const other = await send(app, "/v1/orders", { key: "k422", body: '{"a":2}' });
    assert.equal(other.status, 422);
    assert.equal((await other.json()).code, "idempotency-key-reused");
    assert.equal(counter.calls, 1);

    const patch = { key: "kp", method: "PATCH" };
    assert.equal((await send(app, "/v1/orders/1", patch)).status, 200);
    assert.equal((await send(app, "/v1/orders/2", patch)).status, 422);
  });

  await t.step("keys are scoped by principal", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, {}, route);
    for (const sub of ["alice", "bob", undefined]) {
      const res = await send(app, "/v1/orders", { key: "shared", sub });
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("idempotency-replayed"), null);
      await res.body?.cancel();
    }
    assert.equal(counter.calls, 3);
    const again = await send(app, "/v1/orders", { key: "shared", sub: "bob" });
    assert.equal((await again.json()).n, 2);
  });

  await t.step("malformed keys are 400 and the handler does not run", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, {}, route);
    for (const key of ["x".repeat(256), "a\x01b", "a\tb", "", '""']) {
      const res = await send(app, "/v1/orders", { key });
      assert.equal(res.status, 400, JSON.stringify(key));
      assert.equal((await res.json()).code, "invalid-idempotency-key");
    }
    assert.equal(counter.calls, 0);
    // The IETF draft's structured-field form names the same key as the bare form.
    await (await send(app, "/v1/orders", { key: "x".repeat(255) })).body?.cancel();
    await (await send(app, "/v1/orders", { key: "sf" })).body?.cancel();
    const quoted = await send(app, "/v1/orders", { key: '"sf"' });
    assert.equal(quoted.headers.get("idempotency-replayed"), "true");
    await quoted.body?.cancel();
    assert.equal(counter.calls, 2);
  });

  await t.step("a route that requires a key refuses requests without one", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, { required: (c) => c.req.path === "/v1/orders" }, (app) => {
      route(app);
      app.post("/v1/notes", (c) => c.json({ ok: true }, 201));
    });
    const res = await send(app, "/v1/orders");
    assert.equal(res.status, 400);
    assert.equal((await res.json()).code, "idempotency-key-required");
    assert.equal(counter.calls, 0);
    assert.equal((await send(app, "/v1/notes")).status, 201);
    assert.equal((await send(app, "/v1/notes")).status, 201);
  });

  await t.step("GET ignores the header", async () => {
    let calls = 0;
    const { app } = testApp(
      redis,
      {},
      (app) => app.get("/v1/orders", (c) => c.json({ n: ++calls })),
    );
    for (const n of [1, 2]) {
      const res = await send(app, "/v1/orders", { key: "kg", method: "GET" });
      assert.equal(res.headers.get("idempotency-replayed"), null);
      assert.deepEqual(await res.json(), { n });
    }
  });

  await t.step("binary bodies are hashed and replayed byte for byte", async () => {
    const { app } = testApp(
      redis,
      { maxBodyBytes: 16 },
      (app) =>
        app.post(
          "/v1/blobs",
          async (c) =>
            c.body(new Uint8Array(await c.req.raw.arrayBuffer()), 201, {
              "Content-Type": "application/octet-stream",
            }),
        ),
    );
    const bytes = new Uint8Array([0, 255, 254, 1, 0xc3]);
    const type = "application/octet-stream";
    const first = await send(app, "/v1/blobs", { key: "kb", body: bytes, type });
    assert.deepEqual(new Uint8Array(await first.arrayBuffer()), bytes);
    const retry = await send(app, "/v1/blobs", { key: "kb", body: bytes.slice(), type });
    assert.equal(retry.headers.get("idempotency-replayed"), "true");
    assert.deepEqual(new Uint8Array(await retry.arrayBuffer()), bytes);
    const other = await send(app, "/v1/blobs", { key: "kb", body: bytes.slice(1), type });
    assert.equal(other.status, 422);
    await other.body?.cancel();
    const big = await send(app, "/v1/blobs", { key: "kbig", body: new Uint8Array(17), type });
    assert.equal(big.status, 413);
    await big.body?.cancel();
  });

  await t.step("an expired in-flight lock (crashed first request) lets a retry run", async () => {
    const { counter, route } = counting();
    const { app, namespace } = testApp(redis, { scope: () => "fixed" }, route);
    const store = createIdempotencyStore(redis);
    const recordKey = await idempotencyKeys(namespace).record("fixed", "kc");
    const body = new TextEncoder().encode('{"a":1}');
    const fingerprint = requestFingerprint("POST", "/v1/orders", "application/json", body);
    // The "crashed" instance: it claimed the key and never completes or renews it.
    const crashed = { fingerprint, token: "crashed", lockTtlMs: 80, scope: "fixed", key: "kc" };
    assert.deepEqual(await store.claim(recordKey, crashed), { kind: "claimed" });
    const blocked = await send(app, "/v1/orders", { key: "kc", body: '{"a":1}' });
    assert.equal(blocked.status, 409);
    await blocked.body?.cancel();
    await sleep(120);
    const retry = await send(app, "/v1/orders", { key: "kc", body: '{"a":1}' });
    assert.equal(retry.status, 201);
    assert.equal(retry.headers.get("idempotency-replayed"), null);
    await retry.body?.cancel();
    // Fencing: the crashed instance coming back cannot overwrite the new claimant's result.
    const late = { status: 200, headers: [], body: new Uint8Array(), taskId: null };
    assert.equal(await store.complete(recordKey, "crashed", 60_000, late), false);
    const replay = await send(app, "/v1/orders", { key: "kc", body: '{"a":1}' });
    assert.equal(replay.status, 201);
    assert.equal((await replay.json()).n, 1);
    assert.equal(counter.calls, 1);
  });

  await t.step("a stored response expires after ttlMs", async () => {
    const { counter, route } = counting();
    const { app } = testApp(redis, { ttlMs: 100 }, route);
    await (await send(app, "/v1/orders", { key: "kt" })).body?.cancel();
    await sleep(150);
    const res = await send(app, "/v1/orders", { key: "kt" });
    assert.equal(res.headers.get("idempotency-replayed"), null);
    assert.equal((await res.json()).n, 2);
    assert.equal(counter.calls, 2);
  });

  await t.step(
    "a replayed 202 hand-off keeps its status code and reports the task's current state",
    async () => {
      const queue = testQueue(redis);
      let calls = 0;
      const { app } = testApp(redis, { queue }, (app) => {
        app.post("/v1/jobs", async (c) => {
          calls++;
          const { id } = await queue.enqueue("echo", await c.req.json());
          c.set("idempotencyTaskId", id);
          return c.json({ task_id: id, status: "pending" }, 202, { Location: `/v1/tasks/${id}` });
        });
        app.post("/v1/jobs-text", async (c) => {
          calls++;
          const { id } = await queue.enqueue("echo", { n: 99 });
          c.set("idempotencyTaskId", id);
          return c.text("accepted", 202);
        });
      });
      const first = await send(app, "/v1/jobs", { key: "kq", body: '{"n":7}' });
      assert.equal(first.status, 202);
      const { task_id: id } = await first.json();
      const replay = async (path = "/v1/jobs", body = '{"n":7}') => {
        const res = await send(app, path, { key: "kq", body });
        assert.equal(res.headers.get("idempotency-replayed"), "true");
        return {
          status: res.status,
          location: res.headers.get("location"),
          body: await res.json(),
        };
      };
      assert.deepEqual(await replay(), {
        status: 202,
        location: `/v1/tasks/${id}`,
        body: { task_id: id, status: "pending", attempts: 0 },
      });
      const [claimed] = (await claim(queue.ctx, { max: 1, leaseMs: 10_000, workerId: "w" })).tasks;
      assert.equal(claimed?.id, id);
      assert.equal((await replay()).body.status, "running");
      await ack(queue.ctx, [{ id, leaseToken: claimed!.leaseToken, resultJson: '{"ok":true}' }]);
      // The original status code (Stripe), the task's outcome in the body.
      assert.deepEqual(await replay(), {
        status: 202,
        location: `/v1/tasks/${id}`,
        body: { task_id: id, status: "succeeded", attempts: 1, result: { ok: true } },
      });

      // The task is the one the route named, whatever the body says.
      await (await send(app, "/v1/jobs-text", { key: "kq", body: "{}" })).body?.cancel();
      const named = await replay("/v1/jobs-text", "{}");
      assert.equal(named.status, 202);
      assert.equal(named.body.status, "pending");
      assert.equal(typeof named.body.task_id, "string");
      assert.equal(calls, 2);
    },
  );
});

Deno.test("idempotency() bounds what it stores and trusts", async (t) => {
  await using stack = await useTestStack();
  const redis = createRedis(stack.settings.redis);

  await t.step(
    "a task_id in a body no gateway route set (an upstream's 202) is replayed as stored, not followed",
    async () => {
      const queue = testQueue(redis);
      const { id: victim } = await queue.enqueue("echo", { n: 42 });
      const { app } = testApp(redis, { queue }, (app) => {
        // What an upstream could answer through the proxy: someone else's task id.
        app.post("/v1/upstream", (c) => c.json({ task_id: victim, status: "queued" }, 202));
      });
      await (await send(app, "/v1/upstream", { key: "ku", sub: "mallory" })).body?.cancel();
      const replay = await send(app, "/v1/upstream", { key: "ku", sub: "mallory" });
      assert.equal(replay.headers.get("idempotency-replayed"), "true");
      assert.equal(replay.status, 202);
      assert.deepEqual(await replay.json(), { task_id: victim, status: "queued" });
    },
  );

  for (const streamed of [false, true]) {
    await t.step(
      `a ${
        streamed ? "streamed" : "buffered"
      } response over maxResponseBytes passes through whole; a retry gets 409, never a partial body`,
      async () => {
        let calls = 0;
        const big = "x".repeat(5_000);
        const { app } = testApp(redis, { maxResponseBytes: 1_024 }, (app) => {
          app.post("/v1/report", () => {
            calls++;
            if (!streamed) return new Response(big, { status: 201 });
            const chunks = [big.slice(0, 900), big.slice(900, 2_000), big.slice(2_000)];
            return new Response(
              new ReadableStream({
                pull(ctl) {
                  const next = chunks.shift();
                  if (next === undefined) ctl.close();
                  else ctl.enqueue(new TextEncoder().encode(next));
                },
              }),
              { status: 201 },
            );
          });
        });
        const first = await send(app, "/v1/report", { key: `kb-${streamed}` });
        assert.equal(first.status, 201);
        assert.equal(await first.text(), big);
        for (let i = 0; i < 2; i++) {
          const retry = await send(app, "/v1/report", { key: `kb-${streamed}` });
          assert.equal(retry.status, 409);
          assert.equal((await retry.json()).code, "idempotency-response-not-replayable");
        }
        assert.equal(calls, 1, "the write ran once");
        // Small answers are still stored and replayed.
        const small = testApp(redis, { maxResponseBytes: 1_024 }, (app) => {
          app.post("/v1/small", () => new Response("ok", { status: 201 }));
        });
        await (await send(small.app, "/v1/small", { key: "ks" })).body?.cancel();
        const replayed = await send(small.app, "/v1/small", { key: "ks" });
        assert.equal(replayed.headers.get("idempotency-replayed"), "true");
        assert.equal(await replayed.text(), "ok");
      },
    );
  }
});

Deno.test("idempotency() checks its options when it is built", () => {
  const redis = createRedis({ url: "http://127.0.0.1:9", token: "t" });
  assert.throws(() => idempotency({ redis, ttlMs: 0 }), RangeError);
  assert.throws(() => idempotency({ redis, ttlMs: 1000, lockTtlMs: 1.5 }), /'lockTtlMs' must be/);
  assert.throws(
    () => idempotency({ redis: undefined as unknown as Redis, ttlMs: 1000 }),
    TypeError,
  );
});
