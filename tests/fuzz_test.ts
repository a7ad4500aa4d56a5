/**
 * Issue 13: a property-based fuzz over every /v1 route's JSON body and every
 * route's query string, as every kind of principal (the unprivileged ones
 * too). Whatever arrives, the answer is never a 5xx; every error is
 * application/problem+json with a `code`; a principal the policy denies gets
 * 401/403 (404/405 where no route serves the normalised path) and changes
 * nothing. Run counts stay modest (CI: well under a
 * minute); a failure prints fast-check's seed and path to replay it.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../testing/stack.ts";
import { ACCESS_POLICY, compilePolicy } from "../edge/auth/policy.ts";
import { principalFromClaims, type Role } from "../edge/auth/principal.ts";
import { PUBLIC_ROUTES } from "../edge/gateway.ts";
import { routeHarness } from "../testing/route_harness.ts";
import { SHARED_STATE_ACTIONS, v1Routes } from "../testing/policy.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
Deno.test({
  name:
    "fuzz: every route, body and query string, every principal: no 5xx, problem+json, no denied change",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const { app, queue, deps } = h;
    const run = h.run;
    try {
      const decide = compilePolicy(ACCESS_POLICY);
      const specs: { sub: string; roles: Role[] }[] = [
        { sub: `fz-none-${run}`, roles: [] },
        { sub: `fz-viewer-${run}`, roles: ["viewer"] },
        { sub: `fz-operator-${run}`, roles: ["operator"] },
        { sub: `fz-admin-${run}`, roles: ["admin"] },
        { sub: "sa:minerva", roles: [] },
        { sub: "sa:api-gateway", roles: [] },
        { sub: `sa:fz-unknown-${run}`, roles: [] },
      ];
      const who = await Promise.all(specs.map(async (p) => ({
        sub: p.sub,
        principal: principalFromClaims(p.sub, p.roles),
        auth: await h.token(p.sub, p.roles),
      })));
      const anonymous = { sub: "anonymous", principal: null, auth: null };
      const routes = v1Routes(app);
      const bodyRoutes = routes.filter(([m]) => BODY_METHODS.has(m));
      assert.ok(bodyRoutes.length >= 15, `only ${bodyRoutes.length} body routes`);

      const param = fc.oneof(
        fc.uuid().map(String),
        fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent),
      );
      const query = fc.dictionary(
        fc.oneof(
          fc.constantFrom("limit", "cursor", "city", "from", "to", "bucket", "min_score", "token"),
          fc.string({ maxLength: 12 }),
        ),
        fc.oneof(fc.string({ maxLength: 40 }), fc.integer().map(String), fc.double().map(String)),
        { maxKeys: 4 },
      );
      const body = fc.oneof(
        fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
        fc.dictionary(fc.string({ maxLength: 16 }), fc.jsonValue({ maxDepth: 3 })).map((v) =>
          JSON.stringify(v)
        ),
        fc.string({ unit: "binary", maxLength: 200 }),
      );
      const caller = fc.constantFrom(...who, anonymous);

      /** One request; asserts the invariants and returns nothing. */
      const check = async (
        [method, pattern]: [string, string],
        p: (typeof who)[number] | typeof anonymous,
        params: string[],
        q: Record<string, string>,
        raw: string | undefined,
      ): Promise<void> => {
        let i = 0;
        const path = pattern.replace(/:[A-Za-z_]+/g, () => params[i++ % params.length]!);
        if (
          SHARED_STATE_ACTIONS.has(`${method} ${pattern}`) && p.principal !== null &&
          decide(p.principal, method, path).allowed
        ) return;
        const search = new URLSearchParams(q).toString();
        const before = await queue.stats();
        const res = await app.request(`${path}${search ? `?${search}` : ""}`, {
          method,
          headers: {
            ...(p.auth === null ? {} : { authorization: p.auth }),
            "content-type": "application/json",
            "idempotency-key": crypto.randomUUID(),
          },
          body: BODY_METHODS.has(method) ? raw ?? "{}" : undefined,
        });
        const text = await res.text();
        const where = `${p.sub} ${method} ${path}?${search} ${raw?.slice(0, 200) ?? ""}`;
        assert.ok(res.status < 500, `${res.status} ${where}: ${text}`);
        if (res.status >= 400) {
          assert.equal(res.headers.get("content-type"), "application/problem+json", where);
          assert.equal(typeof JSON.parse(text).code, "string", where);
        }
        const isPublic = PUBLIC_ROUTES.has(`${method} ${pattern}`);
        const allowed = isPublic ||
          (p.principal !== null && decide(p.principal, method, path).allowed);
        if (!allowed) {
          // 404/405: the path normalised to one no route serves (e.g. `/v1/leads/.`).
          assert.ok([401, 403, 404, 405].includes(res.status), `${res.status} ${where}`);
          assert.deepEqual(await queue.stats(), before, `queue changed: ${where}`);
        }
      };

      await t.step("inputs the fuzz found once stay fixed", async () => {
        const minerva = who.find((p) => p.sub === "sa:minerva")!;
        // A subnormal compared with a `real` column was a Postgres underflow (500).
        await check(["GET", "/v1/leads"], minerva, ["x"], { min_score: "5e-324" }, undefined);
        await check(["PATCH", "/v1/leads/:id"], who[0]!, ["."], {}, "");
      });

      await t.step("JSON bodies on every body route", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...bodyRoutes),
            caller,
            fc.array(param, { minLength: 1, maxLength: 2 }),
            body,
            async (route, p, params, raw) => await check(route, p, params, {}, raw),
          ),
          { numRuns: 400 },
        );
      });

      await t.step("query strings on every route", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...routes),
            caller,
            fc.array(param, { minLength: 1, maxLength: 2 }),
            query,
            async (route, p, params, q) => await check(route, p, params, q, undefined),
          ),
          { numRuns: 400 },
        );
      });

      await t.step(
        "no lead event was recorded for a principal that may not write leads",
        async () => {
          const denied = who.filter((p) => !decide(p.principal, "POST", "/v1/leads").allowed);
          const { rows } = await deps.sql.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM lead_events WHERE source = ANY($1::text[])",
            [denied.map((p) => `api:${p.sub}`)],
          );
          assert.equal(rows[0]!.n, 0);
        },
      );
    } finally {
      // Leads an allowed fuzz principal may have created, with their events.
      const subs = [`api:fz-operator-${run}`, `api:fz-admin-${run}`];
      await deps.sql.query(
        `DELETE FROM businesses WHERE id IN (SELECT lead_id FROM lead_events WHERE source = ANY($1::text[]))`,
        [subs],
      ).catch(() => {});
    }
  },
});
