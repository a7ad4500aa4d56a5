/**
 * The attack suite of issue 13 (part A): one case per hole, each written the
 * way a hostile caller would try it. Every case failed before its fix.
 * In-process apps on the shared test stack (dev/test_stack.ts).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { mintDevToken } from "../dev/token.ts";
import { useTestStack } from "../dev/test_stack.ts";
import { createApp } from "../edge/app.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { task, TASK_CATALOG, type TaskCatalog } from "../shared/tasks/catalog.ts";
import { upstreamTaskCatalog } from "../shared/upstreams/queued_request.ts";
import type { Role } from "../edge/auth/principal.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = { sanitizeOps: false, sanitizeResources: false };

const GENEROUS_LIMITS = JSON.stringify({
  default: { limit: 100_000, window_s: 60 },
  admin: { limit: 100_000, window_s: 60 },
});

/** The platform catalog with one upstream, plus a public type that needs admin rights. */
const CATALOG: TaskCatalog = {
  ...TASK_CATALOG,
  ...upstreamTaskCatalog([{
    name: "crm",
    baseUrl: "http://127.0.0.1:9",
    prefix: "/v1/crm",
    methods: ["GET"],
    principals: ["sa:minerva"],
    timeoutMs: 1_000,
    breaker: "database",
    forwardAuthorization: false,
    passSetCookie: false,
    forwardHeaders: [],
  }]),
  admin_probe: task(z.object({}).strict(), {
    public: true,
    permission: { method: "DELETE", path: "/v1/admin/probe" },
  }),
};

Deno.test({
  name: "POST /v1/tasks: internal types, policy-denied types and other principals' results",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({ RATE_LIMITS: GENEROUS_LIMITS });
    const queue = createQueue(deps.redis, CATALOG, {
      ...deps.config.queue,
      namespace: `s${crypto.randomUUID().slice(0, 8)}`,
    });
    const app = createApp(deps, { queue });
    const token = async (sub: string, roles: Role[] = []) =>
      `Bearer ${await mintDevToken(deps.config.auth, { sub, roles })}`;
    const minerva = await token("sa:minerva");
    const gateway = await token("sa:api-gateway");
    const admin = await token("u-admin", ["admin"]);
    const operator = await token("u-operator", ["operator"]);
    const post = (auth: string, body: unknown) =>
      app.request("/v1/tasks", {
        method: "POST",
        headers: {
          authorization: auth,
          "content-type": "application/json",
          "idempotency-key": crypto.randomUUID(),
        },
        body: JSON.stringify(body),
      });

    await t.step("every internal type is refused with 422 task-type-not-public", async () => {
      const attempts: [string, unknown][] = [
        ["forward_request.crm", {
          method: "POST",
          path: "/../admin",
          headers: [["x-principal", "sa:admin"]],
          body_b64: null,
          idempotency_key: "k",
          queued_at: new Date().toISOString(),
        }],
        ["apply_lead_write", {
          op: "update",
          lead_id: crypto.randomUUID(),
          patch: { name: "pwned" },
          source: "api:u-admin",
        }],
        ["apply_retention", {}],
        ["refresh_lead_metrics", {}],
        ["book_appointment", {
          lead_id: crypto.randomUUID(),
          starts_at: "2001-01-01T00:00:00Z",
          duration_min: 30,
          attendee_email: "a@example.com",
        }],
        ["send_email", { lead_id: crypto.randomUUID(), template: "intro" }],
        ["scrape_leads", { provider: "file", format: "csv", content: "x" }],
      ];
      for (const [type, payload] of attempts) {
        for (const auth of [minerva, operator, admin]) {
          const res = await post(auth, { type, payload, priority: "high" });
          assert.equal(res.status, 422, type);
          assert.equal(res.headers.get("content-type"), "application/problem+json");
          assert.equal((await res.json()).code, "task-type-not-public", type);
        }
      }
      assert.deepEqual(await queue.stats(), {});
    });

    await t.step("a public type whose permission the policy denies is 403", async () => {
      const denied = await post(minerva, { type: "admin_probe", payload: {} });
      assert.equal(denied.status, 403);
      assert.equal((await denied.json()).code, "task-type-forbidden");
      const allowed = await post(admin, { type: "admin_probe", payload: {} });
      assert.equal(allowed.status, 202);
      await allowed.body?.cancel();
    });

    await t.step("the OpenAPI enum of type lists the public types only", async () => {
      const spec = await (await app.request("/openapi.json")).json();
      const schema = spec.components.schemas.EnqueueTaskRequest;
      assert.deepEqual(schema.properties.type.enum, ["noop"]);
    });

    await t.step(
      "a task's result and error are shown to its principal and admins only",
      async () => {
        const res = await post(minerva, { type: "noop", payload: { echo: "secret" } });
        assert.equal(res.status, 202);
        const { task_id } = await res.json();
        await deps.redis.hset(queue.ctx.keys.task(task_id), {
          result: JSON.stringify({ echo: "secret" }),
          last_error: "upstream said: secret",
        });
        const view = async (auth: string) =>
          await (await app.request(`/v1/tasks/${task_id}`, { headers: { authorization: auth } }))
            .json();
        for (const auth of [minerva, admin]) {
          const v = await view(auth);
          assert.deepEqual(v.result, { echo: "secret" });
          assert.equal(v.last_error, "upstream said: secret");
        }
        for (const auth of [gateway, operator]) {
          const v = await view(auth);
          assert.equal(v.status, "pending");
          assert.equal(v.result, null);
          assert.equal(v.last_error, null);
        }
      },
    );
  },
});
