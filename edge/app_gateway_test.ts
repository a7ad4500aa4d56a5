import assert from "node:assert/strict";
import {
  assertThrottledAfterThree,
  THREE_ANONYMOUS_RATE_LIMITS,
} from "../testing/route_harness.ts";
import fc from "fast-check";
import { mintDevToken } from "../dev/token.ts";
import { useTestStack } from "../testing/stack.ts";
import { claim } from "../shared/queue/leases.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { createApp } from "./app.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name: "the /v1 gateway chain end to end",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({
      RATE_LIMITS: JSON.stringify({
        default: { limit: 100_000, window_s: 60 },
        admin: { limit: 100_000, window_s: 60 },
      }),
      MAX_BODY_BYTES: "4096",
    });
    // A private queue namespace: other suites run workers on the shared stack.
    const queue = createQueue(deps.redis, TASK_CATALOG, {
      ...deps.config.queue,
      namespace: testNamespace("g"),
    });
    const app = createApp(deps, { queue });
    const auth = deps.config.auth;
    const token = async (sub: string, roles: ("admin" | "operator" | "viewer")[] = []) =>
      `Bearer ${await mintDevToken(auth, { sub, roles })}`;
    const minerva = await token("sa:minerva");
    const admin = await token("u-admin", ["admin"]);
    const viewer = await token("u-viewer", ["viewer"]);
    const post = (body: unknown, headers: Record<string, string> = {}) =>
      app.request("/v1/tasks", {
        method: "POST",
        headers: { authorization: minerva, "content-type": "application/json", ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });

    await t.step("GET /v1/me returns the principal with rate-limit headers", async () => {
      const res = await app.request("/v1/me", { headers: { authorization: minerva } });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { sub: "sa:minerva", kind: "service", roles: [] });
      assert.match(res.headers.get("ratelimit") ?? "", /^"default";r=\d+;t=\d+$/);
      assert.equal(res.headers.get("ratelimit-policy"), '"default";q=100000;w=60');
      assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    });

    await t.step("no token → 401 with WWW-Authenticate; a viewer cannot POST → 403", async () => {
      const res = await app.request("/v1/me");
      assert.equal(res.status, 401);
      assert.match(res.headers.get("www-authenticate") ?? "", /^Bearer realm=/);
      assert.equal((await res.json()).code, "missing-token");
      const denied = await post({ type: "noop", payload: {} }, {
        authorization: viewer,
        "idempotency-key": "v1",
      });
      assert.equal(denied.status, 403);
      assert.equal((await denied.json()).code, "forbidden");
    });

    await t.step(
      "POST /v1/tasks enqueues once per Idempotency-Key and replays the task's status",
      async () => {
        const missing = await post({ type: "noop", payload: {} });
        assert.equal(missing.status, 400);
        assert.equal((await missing.json()).code, "idempotency-key-required");

        const key = `k-${crypto.randomUUID()}`;
        const first = await post({ type: "noop", payload: { echo: "hi" } }, {
          "idempotency-key": key,
        });
        assert.equal(first.status, 202);
        const body = await first.json();
        assert.equal(body.status, "queued");
        assert.equal(first.headers.get("location"), `/v1/tasks/${body.task_id}`);

        const replay = await post({ type: "noop", payload: { echo: "hi" } }, {
          "idempotency-key": key,
        });
        assert.equal(replay.headers.get("idempotency-replayed"), "true");
        assert.equal((await replay.json()).task_id, body.task_id);

        const reused = await post({ type: "noop", payload: { echo: "other" } }, {
          "idempotency-key": key,
        });
        assert.equal(reused.status, 422);

        const got = await app.request(`/v1/tasks/${body.task_id}`, {
          headers: { authorization: minerva },
        });
        assert.equal(got.status, 200);
        const task = await got.json();
        assert.equal(task.type, "noop");
        assert.equal(task.status, "pending");
        // A worker picks it up: the replay now follows the task, not the stale 202 body.
        await claim(queue.ctx, { max: 100, leaseMs: 30_000, workerId: "test" });
        const later = await post({ type: "noop", payload: { echo: "hi" } }, {
          "idempotency-key": key,
        });
        assert.equal((await later.json()).status, "running");
      },
    );

    await t.step("bad input → 400/413/415 problem+json listing each field", async () => {
      const invalid = await post({
        type: "noop",
        payload: { echo: 5, extra: 1 },
        priority: "urgent",
      }, {
        "idempotency-key": crypto.randomUUID(),
      });
      assert.equal(invalid.status, 400);
      const problem = await invalid.json();
      assert.equal(problem.code, "invalid-request");
      assert.deepEqual(problem.invalid_fields.map((f: { field: string }) => f.field), [
        "body.priority",
      ]);

      const payload = await post({ type: "noop", payload: { echo: 5, extra: 1 } }, {
        "idempotency-key": crypto.randomUUID(),
      });
      assert.equal(payload.status, 400);
      assert.deepEqual(
        (await payload.json()).invalid_fields.map((f: { field: string }) => f.field).sort(),
        ["body.payload", "body.payload.echo"],
      );
      const unknown = await post({ type: "launch_rockets", payload: {} }, {
        "idempotency-key": crypto.randomUUID(),
      });
      assert.deepEqual(
        (await unknown.json()).invalid_fields.map((f: { field: string }) => f.field),
        ["body.type"],
      );

      const malformed = await post("{not json", { "idempotency-key": crypto.randomUUID() });
      assert.equal(malformed.status, 400);
      assert.equal(malformed.headers.get("content-type"), "application/problem+json");
      await malformed.body?.cancel();

      const wrongType = await post("type=noop", {
        "content-type": "application/x-www-form-urlencoded",
      });
      assert.equal(wrongType.status, 415);
      await wrongType.body?.cancel();

      const huge = await post({ type: "noop", payload: { echo: "x".repeat(5000) } }, {
        "idempotency-key": crypto.randomUUID(),
      });
      assert.equal(huge.status, 413);
      assert.equal((await huge.json()).code, "payload-too-large");

      const badId = await app.request("/v1/tasks/not-a-uuid", {
        headers: { authorization: minerva },
      });
      assert.equal(badId.status, 400);
      assert.deepEqual((await badId.json()).invalid_fields.map((f: { field: string }) => f.field), [
        "path.id",
      ]);
      const unknownId = await app.request(`/v1/tasks/${crypto.randomUUID()}`, {
        headers: { authorization: minerva },
      });
      assert.equal(unknownId.status, 404);
      assert.equal((await unknownId.json()).code, "task-not-found");
    });

    await t.step("a known path with a wrong method → 405 with Allow", async () => {
      const res = await app.request("/v1/tasks", {
        method: "PATCH",
        headers: { authorization: admin, "content-type": "application/json" },
        body: "{}",
      });
      assert.equal(res.status, 405);
      assert.equal(res.headers.get("allow"), "GET, HEAD, POST");
      assert.equal((await res.json()).code, "method-not-allowed");
    });

    await t.step(
      "a POST without a body is a 400 where a body is required, never 415 or 500",
      async () => {
        const res = await app.request("/v1/tasks", {
          method: "POST",
          headers: { authorization: minerva, "idempotency-key": `e-${crypto.randomUUID()}` },
        });
        assert.equal(res.status, 400, await res.clone().text());
        assert.equal((await res.json()).code, "invalid-request");
      },
    );

    await t.step("unknown query parameters are a 400 naming each of them", async () => {
      const res = await app.request("/v1/leads?stauts=new&limit=5&zz=1", {
        headers: { authorization: admin },
      });
      assert.equal(res.status, 400);
      const body = await res.json();
      assert.equal(body.code, "invalid-request");
      assert.deepEqual(body.invalid_fields.map((f: { field: string }) => f.field), [
        "query.stauts",
        "query.zz",
      ]);
      assert.match(
        body.invalid_fields[0].message,
        /^unknown parameter \(this route takes .*status/,
      );
      const none = await app.request("/v1/me?verbose=1", { headers: { authorization: admin } });
      assert.equal(none.status, 400);
      assert.match((await none.json()).invalid_fields[0].message, /takes none/);
      const fine = await app.request("/v1/leads?status=new&limit=5", {
        headers: { authorization: admin },
      });
      assert.equal(fine.status, 200);
      await fine.body?.cancel();
    });

    await t.step("an empty query value is the same 400 on every route that takes it", async () => {
      const doc = await (await app.request("/openapi.json")).json();
      const checked: string[] = [];
      for (
        const [path, item] of Object.entries(
          doc.paths as Record<string, { get?: { parameters?: unknown[] } }>,
        )
      ) {
        const params = (item.get?.parameters ?? []) as { in: string; name: string }[];
        const concrete = path.replace(/\{[^}]+\}/g, "00000000-0000-4000-8000-000000000000");
        for (const p of params.filter((p) => p.in === "query")) {
          const res = await app.request(`${concrete}?${p.name}=`, {
            headers: { authorization: admin },
          });
          assert.equal(res.status, 400, `${path}?${p.name}=`);
          const body = await res.json();
          assert.equal(body.code, "invalid-request");
          assert.equal(body.title, "The request is invalid");
          assert.deepEqual(body.invalid_fields, [{
            field: `query.${p.name}`,
            message: "empty value (leave the parameter out instead)",
          }]);
          checked.push(`${path}?${p.name}`);
        }
      }
      // The lists and filters this rule is for are among them.
      for (
        const q of ["/v1/leads?status", "/v1/leads?q", "/v1/appointments?from", "/v1/dlq?type"]
      ) {
        assert.ok(checked.includes(q), `${q} not checked: ${checked.join(" ")}`);
      }
    });

    await t.step(
      "routing comes before authorization: 404 and 405 for every role, 401 without a token",
      async () => {
        const operator = await token("u-operator", ["operator"]);
        const lead = "/v1/leads/00000000-0000-4000-8000-000000000000";
        for (const who of [minerva, viewer, operator, admin]) {
          const unknown = await app.request("/v1/foo", { headers: { authorization: who } });
          assert.equal(unknown.status, 404);
          assert.equal((await unknown.json()).code, "not-found");
          // PUT: no lead route takes it (DELETE is the admins' erasure route).
          const put = await app.request(lead, {
            method: "PUT",
            headers: { authorization: who, "content-type": "application/json" },
            body: "{}",
          });
          assert.equal(put.status, 405);
          assert.equal(put.headers.get("allow"), "DELETE, GET, HEAD, PATCH");
        }
        const anonymous = await app.request("/v1/foo");
        assert.equal(anonymous.status, 401);
        // A route that exists but is not granted is still 403, naming the permission.
        const patch = await app.request(lead, {
          method: "PATCH",
          headers: { authorization: minerva, "content-type": "application/json" },
          body: JSON.stringify({ name: "x" }),
        });
        assert.equal(patch.status, 403);
        const denied = await patch.json();
        assert.equal(denied.permission, "PATCH /v1/leads/*");
        assert.match(denied.detail, /^sa:minerva lacks the permission PATCH \/v1\/leads\/\*/);
      },
    );

    await t.step("/openapi.json is generated from the routes; /docs renders it", async () => {
      const spec = await (await app.request("/openapi.json")).json();
      assert.equal(spec.openapi, "3.1.0");
      const paths = Object.keys(spec.paths);
      for (const p of ["/v1/me", "/v1/tasks", "/v1/tasks/{id}", "/v1/dlq", "/v1/dlq/{id}"]) {
        assert.ok(paths.includes(p), `${p} documented (got ${paths.join(", ")})`);
      }
      // Only /v1 API routes are documented; health probes and /docs are not.
      assert.ok(paths.every((p) => p.startsWith("/v1/")), paths.join(", "));
      assert.ok(spec.paths["/v1/tasks"].post.requestBody);
      assert.deepEqual(spec.components.securitySchemes.bearer, {
        type: "http",
        scheme: "bearer",
        bearerFormat: "JWT",
      });
      const docs = await (await app.request("/docs")).text();
      assert.match(docs, /<code>\/v1\/tasks\/\{id\}<\/code>/);
    });

    await t.step("fuzzed bodies never produce a 5xx", async () => {
      const weird = fc.oneof(
        fc.jsonValue({ maxDepth: 6 }),
        fc.record({
          type: fc.oneof(fc.constant("noop"), fc.string()),
          payload: fc.jsonValue({ maxDepth: 4 }),
        }),
        fc.record({
          type: fc.constant("noop"),
          payload: fc.record({
            echo: fc.oneof(
              fc.string({ unit: "binary", maxLength: 2000 }),
              fc.integer(),
              fc.constant(null),
            ),
          }),
          priority: fc.oneof(fc.constant("high"), fc.string()),
          delay_ms: fc.oneof(fc.integer(), fc.double()),
        }, { requiredKeys: [] }),
        fc.string({ unit: "binary", maxLength: 300 }).map((s) => ({ raw: s })),
        fc.integer({ min: 50, max: 2000 }).map((d) => ({
          nested: JSON.parse("[".repeat(d) + "]".repeat(d)),
        })),
      );
      await fc.assert(
        fc.asyncProperty(weird, fc.boolean(), async (value, asRawText) => {
          const body = asRawText && typeof value === "object" && value !== null && "raw" in value
            ? String((value as { raw: string }).raw)
            : JSON.stringify(value);
          const res = await post(body, { "idempotency-key": crypto.randomUUID() });
          const text = await res.text();
          assert.ok(res.status < 500, `status ${res.status}: ${text.slice(0, 300)}`);
          if (res.status >= 400) {
            assert.equal(res.headers.get("content-type"), "application/problem+json");
          }
        }),
        { numRuns: 150 },
      );
    });
  },
});

Deno.test({
  name: "failed authentication is rate-limited by client IP (anonymous policy)",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({
      RATE_LIMITS: THREE_ANONYMOUS_RATE_LIMITS,
    });
    const queue = createQueue(deps.redis, TASK_CATALOG, {
      namespace: testNamespace("a"),
    });
    const app = createApp(deps, { queue });
    // app.request() has no socket, so every caller here is the same "unknown"
    // IP, which other suites on the shared stack may also have charged: assert
    // the shape (401s, then only 429s, by the 4th request at the latest).
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await app.request("/v1/me", {
        headers: { authorization: `Bearer guess.${i}.x` },
      });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    assertThrottledAfterThree(statuses, 401);
    const token = await mintDevToken(deps.config.auth, { sub: "sa:minerva" });
    const ok = await app.request("/v1/me", { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, "a valid token is not charged to the IP's anonymous budget");
    await ok.body?.cancel();
  },
});
