/**
 * The attack suite of issue 13 (part A): one case per hole, each written the
 * way a hostile caller would try it. Every case failed before its fix.
 * In-process apps on the shared test stack (testing/stack.ts).
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { mintDevToken } from "../dev/token.ts";
import { useTestStack } from "../testing/stack.ts";
import { createApp } from "../edge/app.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { task, TASK_CATALOG, type TaskCatalog } from "../shared/tasks/catalog.ts";
import { upstreamTaskCatalog } from "../shared/upstreams/queued_request.ts";
import { platformCatalog } from "../shared/queue/from_config.ts";
import type { Role } from "../edge/auth/principal.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { createLead } from "../shared/leads/repository.ts";
import { testNamespace } from "../testing/namespace.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

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
      namespace: testNamespace("s"),
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
        ["retrain_lead_model", { trigger: "api" }],
        ["rescore_leads", { activation_id: 1 }],
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

/** `{"a":{"a":…}}` nested `depth` levels, as text (JSON.stringify itself would overflow). */
function deepJson(depth: number): string {
  return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

Deno.test({
  name: "breakers count only their dependency's failures, never a platform bug or a caller's input",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({ RATE_LIMITS: GENEROUS_LIMITS });
    const namespace = testNamespace();
    const queue = createQueue(deps.redis, TASK_CATALOG, { ...deps.config.queue, namespace });
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      namespace,
      flushMs: 5,
    });
    await breakers.start();
    try {
      // Fault injection into the platform's own database layer: while `fault`
      // is set, every query made through the app's pool throws it.
      let fault: unknown = null;
      const sql = new Proxy(deps.sql, {
        get(target, prop, receiver) {
          if ((prop === "query" || prop === "connect") && fault !== null) {
            const err = fault;
            return () => Promise.reject(err);
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const app = createApp({ ...deps, sql }, { queue, breakers });
      const minerva = `Bearer ${await mintDevToken(deps.config.auth, { sub: "sa:minerva" })}`;
      const operator = `Bearer ${await mintDevToken(deps.config.auth, {
        sub: "u-operator",
        roles: ["operator"],
      })}`;
      const lead = await createLead(deps.sql, {
        name: `Breaker site ${namespace}`,
        city: `Breakertown-${namespace}`,
        source: "api",
      }, "test");
      const event = () => ({
        id: crypto.randomUUID(),
        time: new Date().toISOString(),
        lead_id: lead.id,
        event_type: "email_opened",
      });
      const range = `from=${new Date(Date.now() - 86_400_000).toISOString()}&to=${
        new Date().toISOString()
      }`;
      const sites: [string, string, () => Promise<Response>][] = [
        [
          "GET /v1/leads",
          "database",
          () =>
            Promise.resolve(app.request(`/v1/leads?city=Breakertown-${namespace}`, {
              headers: { authorization: minerva },
            })),
        ],
        ["POST /v1/leads", "database", () =>
          Promise.resolve(app.request("/v1/leads", {
            method: "POST",
            headers: { authorization: operator, "content-type": "application/json" },
            body: JSON.stringify({ name: `Site ${crypto.randomUUID()}`, city: "Nowhere" }),
          }))],
        [
          "PATCH /v1/leads/:id",
          "database",
          () =>
            Promise.resolve(app.request(`/v1/leads/${lead.id}`, {
              method: "PATCH",
              headers: { authorization: operator, "content-type": "application/json" },
              body: JSON.stringify({ category: "cafe" }),
            })),
        ],
        ["POST /v1/events", "database", () =>
          Promise.resolve(app.request("/v1/events", {
            method: "POST",
            headers: { authorization: minerva, "content-type": "application/json" },
            body: JSON.stringify({ events: [event()] }),
          }))],
        [
          "GET /v1/analytics/funnel",
          "analytics",
          () =>
            Promise.resolve(app.request(`/v1/analytics/funnel?${range}`, {
              headers: { authorization: minerva },
            })),
        ],
      ];
      const bugs = [
        new TypeError("Cannot read properties of undefined (reading 'rows')"),
        new RangeError("Maximum call stack size exceeded"),
        new SyntaxError("Unexpected token < in JSON"),
      ];
      for (const [site, name, call] of sites) {
        await t.step(
          `${site}: a platform bug is a 500 and charges no ${name} breaker`,
          async () => {
            const breaker = breakers.get(name);
            for (let i = 0; i < breaker.policy.fail_max + 2; i++) {
              fault = bugs[i % bugs.length];
              const res = await call();
              assert.equal(res.status, 500, `${site} #${i}`);
              assert.equal((await res.json()).code, "internal");
            }
            assert.equal(breaker.snapshot().consecutiveFailures, 0);
            assert.equal(breaker.state, "closed");
            // The control: a connection failure of the database is charged.
            fault = new Error("Connection terminated unexpectedly");
            const down = await call();
            assert.equal(down.status, 503);
            await down.body?.cancel();
            assert.equal(breaker.snapshot().consecutiveFailures, 1);
            fault = null;
            const ok = await call();
            assert.ok(ok.status < 300, `${site}: ${ok.status}`);
            await ok.body?.cancel();
          },
        );
      }

      await t.step(
        "every breaker (workers' too): an engine error inside call() is not charged",
        async () => {
          for (const name of Object.keys(deps.config.breakerPolicies)) {
            const breaker = breakers.get(name);
            for (let i = 0; i < breaker.policy.fail_max + 2; i++) {
              const bug = bugs[i % bugs.length]!;
              await assert.rejects(breaker.call(() => Promise.reject(bug)), (e) => e === bug);
            }
            assert.equal(breaker.snapshot().consecutiveFailures, 0, name);
            assert.equal(breaker.state, "closed", name);
            const refused = new TypeError("fetch failed");
            await assert.rejects(breaker.call(() => Promise.reject(refused)));
            assert.equal(breaker.snapshot().consecutiveFailures, 1, name);
            await breaker.call(() => Promise.resolve(1));
          }
        },
      );

      await t.step("POST /v1/events nested 20,000 deep: 400 before anything walks it", async () => {
        fault = null;
        const database = breakers.get("database");
        for (let i = 0; i < database.policy.fail_max * 2; i++) {
          const body = `{"events":[{"id":"${crypto.randomUUID()}","time":"${
            new Date().toISOString()
          }","lead_id":"${lead.id}","event_type":"email_opened","event_data":${
            deepJson(20_000)
          }}]}`;
          const res = await app.request("/v1/events", {
            method: "POST",
            headers: { authorization: minerva, "content-type": "application/json" },
            body,
          });
          assert.equal(res.status, 400);
          assert.equal(res.headers.get("content-type"), "application/problem+json");
          assert.equal((await res.json()).code, "json-too-deep");
        }
        assert.equal(database.snapshot().consecutiveFailures, 0);
        const leads = await app.request(`/v1/leads?city=Breakertown-${namespace}`, {
          headers: { authorization: minerva },
        });
        assert.equal(leads.status, 200);
        await leads.body?.cancel();
      });
    } finally {
      await breakers.stop();
      await deps.sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [`Breakertown-${namespace}`],
      );
      await deps.sql.query("DELETE FROM businesses WHERE city IN ($1, 'Nowhere')", [
        `Breakertown-${namespace}`,
      ]);
    }
  },
});

Deno.test({
  name: "a queued upstream write is keyed by principal, never by a client's X-Request-Id alone",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({
      RATE_LIMITS: GENEROUS_LIMITS,
      UPSTREAMS: JSON.stringify([{
        name: "crm",
        base_url: "http://127.0.0.1:9/",
        prefix: "/v1/crm",
        methods: ["POST"],
        principals: ["sa:minerva", "sa:api-gateway"],
        timeout_ms: 1000,
      }]),
      BREAKER_POLICIES: JSON.stringify({ crm: { fail_max: 3, reset_timeout_ms: 600_000 } }),
    });
    const namespace = testNamespace();
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      namespace,
      flushMs: 5,
    });
    await breakers.start();
    try {
      await breakers.forceOpen("crm");
      const queue = createQueue(deps.redis, platformCatalog(deps.config), {
        ...deps.config.queue,
        namespace,
      });
      const app = createApp(deps, { queue, breakers });
      const write = async (sub: string, headers: Record<string, string>) => {
        const res = await app.request("/v1/crm/notes", {
          method: "POST",
          headers: {
            authorization: `Bearer ${await mintDevToken(deps.config.auth, { sub })}`,
            "content-type": "application/json",
            ...headers,
          },
          body: JSON.stringify({ note: sub }),
        });
        assert.equal(res.status, 202);
        return (await res.json()).task_id as string;
      };
      const shared = { "x-request-id": "guessable-request-id-1" };
      const mine = await write("sa:minerva", shared);
      const theirs = await write("sa:api-gateway", shared);
      assert.notEqual(mine, theirs, "another principal's X-Request-Id reused: its own task");
      const key = { "idempotency-key": "same-key" };
      assert.notEqual(await write("sa:minerva", key), await write("sa:api-gateway", key));
      // The upstream dedups on the stored key: it must not be the client's request id either.
      const task = await queue.getTask(theirs);
      const stored = (task?.payload as { idempotency_key: string }).idempotency_key;
      assert.notEqual(stored, shared["x-request-id"]);
    } finally {
      await breakers.stop();
    }
  },
});
