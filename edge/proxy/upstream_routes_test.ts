import assert from "node:assert/strict";
import { Hono } from "hono";
import { stream } from "hono/streaming";
import { mintDevToken } from "../../dev/token.ts";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { waitUntil } from "../../testing/wait.ts";
import { platformCatalog } from "../../shared/queue/from_config.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { forwardTaskType } from "../../shared/upstreams/upstream.ts";
import { Runner } from "../../workers/runner.ts";
import { forwardRequestHandlers } from "../../workers/tasks/forward_request.ts";
import { createApp } from "../app.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

/** What the controlled upstream saw. */
interface Seen {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A small Hono upstream whose behaviour the test switches. */
function startControlUpstream() {
  const seen: Seen[] = [];
  const state = { mode: "ok" as "ok" | "fail" | "slow" | "throttle", slowMs: 1500, version: 1 };
  let releaseStream: () => void = () => {};
  const app = new Hono();
  app.use(async (c, next) => {
    seen.push({
      method: c.req.method,
      path: new URL(c.req.url).pathname + new URL(c.req.url).search,
      headers: Object.fromEntries(c.req.raw.headers),
      body: c.req.method === "GET" ? "" : await c.req.text(),
    });
    if (state.mode === "fail") return c.text("upstream exploded", 503);
    if (state.mode === "slow") await new Promise((r) => setTimeout(r, state.slowMs));
    if (state.mode === "throttle") return c.text("slow down", 429, { "Retry-After": "7" });
    await next();
  });
  app.get(
    "/leads",
    (c) =>
      c.json({ leads: [{ id: 1, version: state.version }], q: c.req.query("q") ?? null }, 200, {
        "Keep-Alive": "timeout=5",
        "X-Upstream": "control",
      }),
  );
  app.get("/missing", (c) => c.json({ error: "no such thing" }, 404));
  app.get(
    "/cookie",
    (c) => c.json({ ok: true }, 200, { "Set-Cookie": "session=upstream; Path=/" }),
  );
  app.post("/echo", (c) => {
    const last = seen[seen.length - 1]!;
    return c.json({ received: last.body.length, idempotency_key: c.req.header("idempotency-key") });
  });
  app.get("/stream", (c) =>
    stream(c, async (s) => {
      await s.write("first;");
      await new Promise<void>((r) => releaseStream = r);
      await s.write("second");
    }));
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, app.fetch);
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    seen,
    state,
    release: () => releaseStream(),
    close: () => server.shutdown(),
  };
}

Deno.test({
  name: "upstream proxy routes: forwarding, breaker, degraded reads, queued writes",
  // Deps hold a Neon Pool and the registry an SSE subscription (async teardown).
  ...noSanitizers,
}, async (t) => {
  await using stack = await useTestStack();
  const upstream = startControlUpstream();
  const ns = testNamespace("px");
  const deps = stack.makeDeps({
    UPSTREAMS: JSON.stringify([{
      name: "control",
      base_url: `${upstream.url}/`,
      prefix: "/v1/control",
      methods: ["GET", "POST"],
      principals: ["sa:minerva", "role:admin"],
      // Generous: under full-suite load a healthy call must not time out.
      timeout_ms: 1000,
      forward_headers: ["x-custom"],
    }]),
    BREAKER_POLICIES: JSON.stringify({
      control: { fail_max: 3, reset_timeout_ms: 400, probe_lease_ms: 2000 },
    }),
  });
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    policies: deps.config.breakerPolicies,
    namespace: ns,
    flushMs: 5,
  });
  await breakers.start();
  const queue = createQueue(deps.redis, platformCatalog(deps.config), { namespace: ns });
  const app = createApp(deps, { queue, breakers });
  const minerva = `Bearer ${await mintDevToken(deps.config.auth, { sub: "sa:minerva" })}`;
  const viewer = `Bearer ${await mintDevToken(deps.config.auth, { sub: "v", roles: ["viewer"] })}`;
  const call = (method: string, path: string, init: RequestInit = {}, auth = minerva) =>
    app.request(path, {
      method,
      ...init,
      headers: { authorization: auth, "content-type": "application/json", ...init.headers },
    });
  let runner: Runner | null = null;
  try {
    await t.step(
      "forwards path and query, adds request id, traceparent and principal",
      async () => {
        const res = await call("GET", "/v1/control/leads?q=plumber", {
          headers: {
            "connection": "x-hop",
            "x-hop": "must not pass",
            "x-custom": "passes",
            "x-request-id": "rid-from-client-123",
            "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          },
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), { leads: [{ id: 1, version: 1 }], q: "plumber" });
        assert.equal(res.headers.get("x-upstream"), "control");
        assert.equal(res.headers.get("keep-alive"), null, "hop-by-hop response header dropped");
        const seen = upstream.seen.at(-1)!;
        assert.equal(seen.path, "/leads?q=plumber");
        assert.equal(seen.headers["x-custom"], "passes", "configured in forward_headers");
        assert.equal(seen.headers["x-hop"], undefined, "header named in Connection dropped");
        assert.equal(seen.headers["authorization"], undefined, "gateway credentials not passed on");
        assert.equal(seen.headers["x-principal"], "sa:minerva");
        assert.equal(seen.headers["x-request-id"], res.headers.get("x-request-id"));
        assert.match(
          seen.headers["traceparent"]!,
          /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/,
          "the caller's trace continues upstream",
        );
        assert.notEqual(
          seen.headers["traceparent"],
          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        );
      },
    );

    await t.step(
      "only allow-listed request headers reach the upstream; X-Forwarded-For is the gateway's",
      async () => {
        const res = await call("GET", "/v1/control/leads", {
          headers: {
            "x-http-method-override": "DELETE",
            "x-original-url": "/admin",
            "x-rewrite-url": "/admin",
            "forwarded": "for=6.6.6.6;host=evil.example",
            "x-real-ip": "6.6.6.6",
            "x-forwarded-for": "6.6.6.6",
            "x-forwarded-host": "evil.example",
            "x-principal": "sa:admin",
            "cookie": "session=stolen",
            "x-unlisted": "dropped",
            "accept-language": "fr",
          },
        });
        assert.equal(res.status, 200);
        await res.body?.cancel();
        const seen = upstream.seen.at(-1)!.headers;
        for (
          const name of [
            "x-http-method-override",
            "x-original-url",
            "x-rewrite-url",
            "forwarded",
            "x-real-ip",
            "cookie",
            "x-unlisted",
          ]
        ) {
          assert.equal(seen[name], undefined, `${name} must not reach the upstream`);
        }
        // app.request() has no socket: no address is known, so none is claimed.
        assert.equal(seen["x-forwarded-for"], undefined);
        // With a socket peer (and no trusted proxy), the peer is the client,
        // whatever X-Forwarded-For the caller wrote.
        const peered = await app.request("/v1/control/leads", {
          headers: { authorization: minerva, "x-forwarded-for": "6.6.6.6" },
        }, { remoteAddr: { hostname: "192.0.2.44", port: 40_000, transport: "tcp" } });
        assert.equal(peered.status, 200);
        await peered.body?.cancel();
        assert.equal(upstream.seen.at(-1)!.headers["x-forwarded-for"], "192.0.2.44");
        assert.notEqual(seen["x-forwarded-host"], "evil.example");
        assert.equal(seen["x-principal"], "sa:minerva");
        assert.equal(seen["accept-language"], "fr");
      },
    );

    await t.step(
      "encoded separators and dot segments are refused; the rest is re-encoded canonically",
      async () => {
        const before = upstream.seen.length;
        for (
          const path of [
            "/v1/control/..%2Fadmin",
            "/v1/control/%2E%2E%2Fadmin",
            "/v1/control/leads%2F..%2F..%2Fadmin",
            "/v1/control/..%5Cadmin",
            "/v1/control/a%5C..%5C..%5Cadmin",
            "/v1/control//leads",
            "/v1/control/leads%00",
            "/v1/control/%E0%A4%A",
          ]
        ) {
          const res = await call("GET", path);
          assert.equal(res.status, 400, path);
          assert.equal((await res.json()).code, "invalid-path", path);
        }
        assert.equal(upstream.seen.length, before, "none of them reached the upstream");
        // Dot segments spelled %2e are resolved by URL parsing before routing
        // (WHATWG URL), so they never leave the prefix they appear under.
        // Encoded unreserved characters: the router matched the decoded path,
        // and the upstream gets that same path, encoded one canonical way.
        const res = await call("GET", "/v1/control/le%61ds?q=a%2Fb");
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assert.equal(upstream.seen.at(-1)!.path, "/leads?q=a%2Fb");
      },
    );

    await t.step(
      "upstream Set-Cookie is dropped unless the upstream is configured to pass it",
      async () => {
        const res = await call("GET", "/v1/control/cookie");
        assert.equal(res.status, 200);
        await res.body?.cancel();
        assert.equal(res.headers.get("set-cookie"), null);
      },
    );

    await t.step("authorization uses the upstream's principals", async () => {
      const res = await call("GET", "/v1/control/leads", {}, viewer);
      assert.equal(res.status, 403);
      assert.equal((await res.json()).code, "forbidden");
    });

    await t.step("streams request and response bodies", async () => {
      const big = JSON.stringify({ blob: "x".repeat(200_000) });
      const echo = await call("POST", "/v1/control/echo", { body: big });
      assert.equal(echo.status, 200);
      assert.equal((await echo.json()).received, big.length);

      const res = await call("GET", "/v1/control/stream");
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      const first = await reader.read();
      // The first chunk arrives while the upstream is still holding the rest.
      assert.equal(new TextDecoder().decode(first.value), "first;");
      upstream.release();
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) {
        rest += new TextDecoder().decode(r.value);
      }
      assert.equal(rest, "second");
    });

    await t.step("4xx answers pass through and never trip the breaker", async () => {
      for (let i = 0; i < 6; i++) {
        const res = await call("GET", "/v1/control/missing");
        assert.equal(res.status, 404);
        await res.body?.cancel();
      }
      assert.equal(breakers.get("control").state, "closed");
    });

    await t.step("a 429 with Retry-After is passed back and counts as nothing", async () => {
      upstream.state.mode = "throttle";
      const res = await call("GET", "/v1/control/leads");
      assert.equal(res.status, 429);
      assert.equal(res.headers.get("retry-after"), "7");
      await res.body?.cancel();
      upstream.state.mode = "ok";
      assert.equal(breakers.get("control").state, "closed");
    });

    await t.step(
      "a request body whose stream throws (a broken upload) is a 500 with a request id and charges nothing",
      async () => {
        const control = breakers.get("control");
        for (let i = 0; i < control.policy.fail_max + 2; i++) {
          // The gateway reads the JSON body before the proxy, so the stream's
          // error surfaces there; were it read by the guarded fetch, it would be
          // TypeError("fetch failed", { cause }), which the breaker ignores too
          // (shared/breakers/breaker_fetch_test.ts).
          const body = new ReadableStream<Uint8Array>({
            pull(ctl) {
              ctl.enqueue(new TextEncoder().encode('{"a":'));
              ctl.error(new RangeError("the body's producer broke"));
            },
          });
          const res = await app.request("/v1/control/echo", {
            method: "POST",
            headers: {
              authorization: minerva,
              "content-type": "application/json",
              "content-length": "9",
            },
            body,
            duplex: "half",
          } as RequestInit);
          assert.equal(res.status, 500);
          assert.equal(res.headers.get("content-type"), "application/problem+json");
          assert.ok(res.headers.get("x-request-id"));
          assert.equal((await res.json()).code, "internal");
        }
        assert.equal(control.snapshot().consecutiveFailures, 0);
        assert.equal(control.state, "closed");
        // The control at the same site: one upstream 503 is charged, and the
        // shared count in Redis is exactly that one (none of the bugs above).
        upstream.state.mode = "fail";
        const down = await call("GET", "/v1/control/leads?q=down");
        assert.equal(down.status, 503);
        await down.body?.cancel();
        upstream.state.mode = "ok";
        const shared = async () => (await breakers.list()).find((b) => b.name === "control")!;
        await waitUntil(async () => (await shared()).consecutiveFailures === 1, {
          timeoutMs: 10_000,
          what: "the 503 reported to Redis",
        });
        assert.equal((await shared()).state, "closed");
        const ok = await call("GET", "/v1/control/leads?q=up");
        assert.equal(ok.status, 200);
        await ok.body?.cancel();
      },
    );

    await t.step("a slow upstream times out with 504 and counts as a failure", async () => {
      upstream.state.mode = "slow";
      const res = await call("GET", "/v1/control/leads");
      assert.equal(res.status, 504);
      assert.equal((await res.json()).code, "upstream-timeout");
      upstream.state.mode = "ok";
    });

    await t.step(
      "failures open the breaker; reads degrade to the cached answer or 503",
      async () => {
        // The earlier successful GET /leads (no query) is the cached answer.
        const fresh = await call("GET", "/v1/control/leads");
        assert.equal(fresh.status, 200);
        await fresh.body?.cancel();
        await new Promise((r) => setTimeout(r, 50)); // the cache write is in the background
        upstream.state.mode = "fail";
        for (let i = 0; i < 3; i++) {
          const res = await call("GET", "/v1/control/leads?q=fail");
          assert.equal(res.status, 503);
          await res.body?.cancel();
        }
        await waitUntil(() => breakers.get("control").state === "open", { what: "control open" });
        const before = upstream.seen.length;

        const degraded = await call("GET", "/v1/control/leads");
        assert.equal(degraded.status, 200);
        assert.equal(degraded.headers.get("x-degraded"), "true");
        assert.ok(degraded.headers.get("warning"));
        const body = await degraded.json();
        assert.equal(body.status, "degraded");
        assert.equal(body.message, "Control temporarily unavailable");
        assert.deepEqual(body.cached_data, { leads: [{ id: 1, version: 1 }], q: null });
        assert.ok(body.age_s >= 0);

        const uncached = await call("GET", "/v1/control/leads?q=never-seen");
        assert.equal(uncached.status, 503);
        const retryAfter = Number(uncached.headers.get("retry-after"));
        assert.ok(retryAfter >= 1 && retryAfter <= 1, `Retry-After ${retryAfter}`);
        assert.equal((await uncached.json()).code, "downstream-unavailable");
        assert.equal(upstream.seen.length, before, "nothing reached the upstream while open");
      },
    );

    let taskId = "";
    await t.step("a write while open is queued (202) and not sent", async () => {
      const before = upstream.seen.length;
      const res = await call("POST", "/v1/control/echo", {
        body: JSON.stringify({ note: "call me back" }),
        headers: { "idempotency-key": "write-1" },
      });
      assert.equal(res.status, 202);
      const body = await res.json();
      assert.equal(body.status, "queued");
      assert.equal(body.message, "Request queued for processing");
      assert.ok(body.retry_after >= 1);
      taskId = body.task_id;
      assert.equal(res.headers.get("location"), `/v1/tasks/${taskId}`);
      const task = await queue.getTask(taskId);
      assert.equal(task?.type, forwardTaskType("control"));
      assert.equal(task?.status, "pending");
      assert.equal(upstream.seen.length, before);
    });

    await t.step(
      "workers hold the queued write while open and apply it after recovery",
      async () => {
        runner = new Runner({
          queue,
          breakers,
          handlers: forwardRequestHandlers(deps.config.upstreams, breakers),
          deps,
          concurrency: 2,
          pollMs: 50,
        });
        runner.start();
        await new Promise((r) => setTimeout(r, 150));
        assert.equal((await queue.getTask(taskId))?.status, "pending", "not claimed while open");

        upstream.state.mode = "ok";
        // After the reset timeout the next call is the probe; its success closes the breaker.
        await waitUntil(async () => {
          const res = await Promise.resolve(call("GET", "/v1/control/leads")).catch(() => null);
          await res?.body?.cancel();
          return res?.status === 200 && !res.headers.has("x-degraded");
        }, { timeoutMs: 5000, everyMs: 100, what: "recovery" });
        await waitUntil(() => breakers.get("control").state === "closed", { what: "closed" });
        await waitUntil(async () => (await queue.getTask(taskId))?.status === "succeeded", {
          timeoutMs: 5000,
          what: "queued write applied",
        });
        const applied = upstream.seen.filter((s) =>
          s.method === "POST" && s.body.includes("call me back")
        );
        assert.equal(applied.length, 1, "applied exactly once");
        assert.equal(applied[0]!.headers["idempotency-key"], "write-1");
        assert.equal(applied[0]!.headers["x-principal"], "sa:minerva");
        const task = await queue.getTask(taskId);
        assert.deepEqual(task?.result, {
          status: 200,
          body: JSON.stringify({ received: applied[0]!.body.length, idempotency_key: "write-1" }),
        });
      },
    );

    await t.step(
      "a forward_request replay filters its stored headers and refuses paths leaving the base",
      async () => {
        const payload = (path: string, extra: [string, string][] = []) => ({
          method: "POST",
          path,
          headers: [["content-type", "application/json"], ...extra],
          body_b64: btoa("{}"),
          idempotency_key: `replay-${crypto.randomUUID()}`,
          queued_at: new Date().toISOString(),
        });
        const hostile = await queue.enqueue(
          forwardTaskType("control"),
          payload("/echo", [
            ["x-principal", "sa:admin"],
            ["x-http-method-override", "DELETE"],
            ["x-original-url", "/admin"],
            ["forwarded", "for=6.6.6.6"],
          ]),
        );
        await waitUntil(async () => (await queue.getTask(hostile.id))?.status === "succeeded", {
          timeoutMs: 10_000,
          what: "hostile-header replay applied",
        });
        const seen = upstream.seen.at(-1)!;
        assert.equal(seen.path, "/echo");
        assert.equal(
          seen.headers["x-principal"],
          undefined,
          "no principal the gateway did not set",
        );
        assert.equal(seen.headers["x-http-method-override"], undefined);
        assert.equal(seen.headers["x-original-url"], undefined);
        assert.equal(seen.headers["forwarded"], undefined);

        const before = upstream.seen.length;
        const escapes: string[] = [];
        for (
          const path of ["/../admin", "/..%2Fadmin", "/a/%2E%2E/%2E%2E/admin", "/%5C..%5Cadmin"]
        ) {
          escapes.push((await queue.enqueue(forwardTaskType("control"), payload(path))).id);
        }
        for (const id of escapes) {
          await waitUntil(async () => (await queue.getTask(id))?.status === "dead", {
            timeoutMs: 10_000,
            what: `replay ${id} dead-lettered`,
          });
        }
        assert.equal(upstream.seen.length, before, "no escaping path reached the upstream");
      },
    );

    await t.step("an unreachable upstream answers 502", async () => {
      await upstream.close();
      const res = await call("GET", "/v1/control/leads?q=gone");
      assert.equal(res.status, 502);
      assert.equal((await res.json()).code, "upstream-unreachable");
    });
  } finally {
    await (runner as Runner | null)?.stop();
    await breakers.stop();
    await upstream.close().catch(() => {});
  }
});
