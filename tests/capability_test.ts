/**
 * Issue 13: no principal reaches, through any route or any task, a
 * capability the access policy denies it. Reads the policy table
 * (edge/auth/policy.ts) and the task catalog (shared/tasks/catalog.ts) and
 * checks every pair against a running app on the test stack.
 */
import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { ACCESS_POLICY, compilePolicy } from "../edge/auth/policy.ts";
import { ROLES } from "../edge/auth/principal.ts";
import { principalFromClaims, type Role } from "../edge/auth/principal.ts";
import { PUBLIC_ROUTES } from "../edge/gateway.ts";
import { routeHarness } from "../testing/route_harness.ts";
import { SHARED_STATE_ACTIONS, v1Routes } from "../testing/policy.ts";
import { platformCatalog } from "../shared/queue/from_config.ts";
import { publicTaskTypes, TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

/**
 * Internal task types and the routes (or schedules) that own them. A new
 * catalog type must be public with a permission, or listed here with its
 * owner: nothing is enqueueable by accident.
 */
const INTERNAL_OWNERS: Record<string, string> = {
  send_email: "POST /v1/outreach/emails",
  book_appointment: "POST /v1/appointments",
  scrape_leads: "POST /v1/scrape-jobs, POST /v1/leads/import",
  apply_lead_write: "POST /v1/leads, PATCH /v1/leads/:id (while the database breaker refuses)",
  refresh_lead_metrics: "the default schedules",
  apply_retention: "the default schedules",
  retrain_lead_model: "POST /v1/models/retrain, the default schedules",
  rescore_leads: "POST /v1/models/:version/activate, POST /v1/models/rollback, retrain_lead_model",
  "forward_request.crm": "the upstream proxy's queued write",
  deliver_alert: "the DLQ's scripts, breaker openings and model deployments (shared/alerts/)",
};

/** Every combination of user roles, every service the policy names, and one it does not. */
function principals(): { sub: string; roles: Role[] }[] {
  const users = Array.from({ length: 2 ** ROLES.length }, (_, mask) => ({
    sub: `u-${mask}`,
    roles: ROLES.filter((_, i) => mask & (1 << i)),
  }));
  const services = new Set<string>();
  for (const g of ACCESS_POLICY) {
    for (const grant of g.grants) for (const s of grant.allow.services ?? []) services.add(s);
  }
  return [
    ...users,
    ...[...services, "sa:unknown"].map((sub) => ({ sub, roles: [] as Role[] })),
  ];
}

Deno.test({
  name: "every catalog type is public with a policy permission, or internal with a named owner",
  fn() {
    const catalog = platformCatalog({
      upstreams: [{
        name: "crm",
        baseUrl: "http://127.0.0.1:9",
        prefix: "/v1/crm",
        methods: ["POST"],
        principals: ["sa:minerva"],
        timeoutMs: 1000,
        breaker: "database",
        forwardAuthorization: false,
        forwardHeaders: [],
        passSetCookie: false,
      }],
    });
    const decide = compilePolicy(ACCESS_POLICY);
    for (const [type, def] of Object.entries(catalog)) {
      if (def.public) {
        assert.ok(def.permission, `${type}: public without a permission`);
        // The permission is a request the policy actually decides (some principal may make it).
        const somebody = principals().some((p) =>
          decide(principalFromClaims(p.sub, p.roles), def.permission!.method, def.permission!.path)
            .allowed
        );
        assert.ok(somebody, `${type}: its permission is granted to nobody`);
      } else {
        assert.ok(INTERNAL_OWNERS[type], `${type}: internal type without a documented owner`);
      }
    }
    assert.deepEqual(publicTaskTypes(TASK_CATALOG), ["noop"]);
  },
});

Deno.test({
  name: "no principal reaches a route or a task type that the policy denies it",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const { app, queue } = h;
    const decide = compilePolicy(ACCESS_POLICY);
    const who = await Promise.all(
      principals().map(async (p) => ({
        ...p,
        principal: principalFromClaims(p.sub, p.roles),
        auth: await h.token(p.sub, p.roles),
      })),
    );
    const routes = v1Routes(app).map(([m, p]) => `${m} ${p}`).filter((r) => !PUBLIC_ROUTES.has(r));
    assert.ok(routes.length >= 25, `only ${routes.length} routes found`);

    await t.step("every route: a principal the policy denies gets 403 forbidden", async () => {
      for (const route of routes) {
        const [method, pattern] = route.split(" ") as [string, string];
        const path = pattern.replace(/:[A-Za-z_]+/g, crypto.randomUUID());
        for (const p of who) {
          const allowed = decide(p.principal, method, path).allowed;
          if (allowed && SHARED_STATE_ACTIONS.has(route)) continue;
          const res = await app.request(path, {
            method,
            headers: {
              authorization: p.auth,
              "content-type": "application/json",
              "idempotency-key": crypto.randomUUID(),
            },
            // An array is no route's body: allowed callers get a 4xx, nothing changes.
            body: method === "GET" ? undefined : "[]",
          });
          const body = await res.text();
          // 401: a service token carrying roles is refused at verification.
          const refused = res.status === 401 ||
            (res.status === 403 && JSON.parse(body).code === "forbidden");
          assert.equal(refused, !allowed, `${p.sub} ${route}: ${res.status} ${body}`);
          assert.ok(res.status < 500, `${p.sub} ${route}: ${res.status} ${body}`);
        }
      }
    });

    await t.step(
      "every task type: POST /v1/tasks enqueues only what the policy allows",
      async () => {
        const catalog = queue.ctx.catalog;
        for (const [type, def] of Object.entries(catalog)) {
          for (const p of who) {
            const before = (await queue.stats()).enqueued ?? 0;
            const res = await app.request("/v1/tasks", {
              method: "POST",
              headers: {
                authorization: p.auth,
                "content-type": "application/json",
                "idempotency-key": crypto.randomUUID(),
              },
              body: JSON.stringify({ type, payload: {} }),
            });
            const enqueued = ((await queue.stats()).enqueued ?? 0) - before;
            const mayPost = decide(p.principal, "POST", "/v1/tasks").allowed;
            const mayRun = def.public === true &&
              decide(p.principal, def.permission!.method, def.permission!.path).allowed;
            const code = (await res.json()).code;
            if (!mayPost) {
              assert.ok(
                res.status === 401 || (res.status === 403 && code === "forbidden"),
                `${p.sub} ${type}: ${res.status} ${code}`,
              );
            } else if (!def.public) {
              assert.deepEqual(
                [res.status, code],
                [422, "task-type-not-public"],
                `${p.sub} ${type}`,
              );
            } else if (!mayRun) {
              assert.deepEqual(
                [res.status, code],
                [403, "task-type-forbidden"],
                `${p.sub} ${type}`,
              );
            } else assert.equal(res.status, 202, `${p.sub} ${type}`);
            assert.equal(enqueued, mayPost && mayRun ? 1 : 0, `${p.sub} ${type}`);
          }
        }
      },
    );
  },
});
