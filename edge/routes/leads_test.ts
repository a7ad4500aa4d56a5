import assert from "node:assert/strict";
import fc from "fast-check";
import { mintDevToken } from "../../dev/token.ts";
import { useTestStack } from "../../dev/test_stack.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = { sanitizeOps: false, sanitizeResources: false };

type Json = Record<string, unknown>;
const fieldsOf = (problem: Json) =>
  (problem.invalid_fields as { field: string }[]).map((f) => f.field).sort();

Deno.test({
  name: "/v1/leads through the gateway: auth, create, get, list, patch and every error",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({
      RATE_LIMITS: JSON.stringify({
        default: { limit: 100_000, window_s: 60 },
        admin: { limit: 100_000, window_s: 60 },
      }),
    });
    const queue = createQueue(deps.redis, TASK_CATALOG, {
      ...deps.config.queue,
      namespace: `l${crypto.randomUUID().slice(0, 8)}`,
    });
    const app = createApp(deps, { queue });
    const token = async (sub: string, roles: ("admin" | "operator" | "viewer")[] = []) =>
      `Bearer ${await mintDevToken(deps.config.auth, { sub, roles })}`;
    const minerva = await token("sa:minerva");
    const operator = await token("u-operator", ["operator"]);
    const viewer = await token("u-viewer", ["viewer"]);
    const call = (
      method: string,
      path: string,
      options: { auth?: string | null; body?: unknown; headers?: Record<string, string> } = {},
    ) => {
      const auth = options.auth === undefined ? minerva : options.auth;
      return app.request(path, {
        method,
        headers: {
          ...(auth === null ? {} : { authorization: auth }),
          ...(options.body === undefined ? {} : { "content-type": "application/json" }),
          ...options.headers,
        },
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
      });
    };
    const run = crypto.randomUUID().slice(0, 8);
    const city = `Leadtown-${run}`;
    const ids: string[] = [];
    const create = async (body: Json, auth?: string) => {
      const res = await call("POST", "/v1/leads", { auth, body: { city, ...body } });
      assert.equal(res.status, 201, await res.clone().text());
      const lead = await res.json();
      ids.push(lead.id);
      return lead;
    };

    try {
      await t.step(
        "no token → 401; a viewer reads but cannot write; sa:minerva cannot PATCH",
        async () => {
          const anon = await call("GET", "/v1/leads", { auth: null });
          assert.equal(anon.status, 401);
          assert.equal((await anon.json()).code, "missing-token");
          const lead = await create({ name: "Auth Cafe" });
          const read = await call("GET", `/v1/leads/${lead.id}`, { auth: viewer });
          assert.equal(read.status, 200);
          await read.body?.cancel();
          for (const [method, auth] of [["PATCH", viewer], ["POST", viewer], ["PATCH", minerva]]) {
            const path = method === "POST" ? "/v1/leads" : `/v1/leads/${lead.id}`;
            const res = await call(method!, path, { auth, body: { name: "Nope" } });
            assert.equal(res.status, 403, `${method} ${path}`);
            assert.equal((await res.json()).code, "forbidden");
          }
        },
      );

      await t.step("POST /v1/leads creates a lead: 201, Location, column-named JSON", async () => {
        const res = await call("POST", "/v1/leads", {
          body: {
            name: "  Harbor Florist ",
            city,
            category: "florist",
            rating: 4.7,
            reviews: 31,
            email: "hi@harbor.example",
            lead_score: 64,
            last_contacted: "2025-03-01T10:00:00+02:00",
            source: "places",
            external_id: `p-${run}`,
          },
        });
        assert.equal(res.status, 201);
        const lead = await res.json();
        ids.push(lead.id);
        assert.equal(res.headers.get("location"), `/v1/leads/${lead.id}`);
        assert.match(lead.id, /^[0-9a-f-]{36}$/);
        assert.equal(lead.name, "Harbor Florist");
        assert.equal(lead.rating, 4.7);
        assert.equal(lead.outreach_status, "new");
        assert.equal(lead.has_website, false);
        assert.equal(lead.source, "places");
        assert.equal(lead.last_contacted, "2025-03-01T08:00:00.000Z");
        assert.match(lead.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

        const dup = await call("POST", "/v1/leads", {
          body: { name: "Again", source: "places", external_id: `p-${run}` },
        });
        assert.equal(dup.status, 409);
        const problem = await dup.json();
        assert.equal(problem.code, "lead-exists");
        assert.equal(problem.lead_id, lead.id);
        assert.equal(dup.headers.get("content-type"), "application/problem+json");
      });

      await t.step("POST works with an Idempotency-Key (replayed) and without one", async () => {
        const key = `lead-${crypto.randomUUID()}`;
        const body = { name: "Keyed Deli", city };
        const first = await call("POST", "/v1/leads", {
          body,
          headers: { "idempotency-key": key },
        });
        assert.equal(first.status, 201);
        const lead = await first.json();
        ids.push(lead.id);
        const replay = await call("POST", "/v1/leads", {
          body,
          headers: { "idempotency-key": key },
        });
        assert.equal(replay.status, 201);
        assert.equal(replay.headers.get("idempotency-replayed"), "true");
        assert.equal(replay.headers.get("location"), `/v1/leads/${lead.id}`);
        assert.equal((await replay.json()).id, lead.id);

        const a = await create({ name: "Unkeyed Deli" });
        const b = await create({ name: "Unkeyed Deli" });
        assert.notEqual(a.id, b.id);
      });

      await t.step("invalid bodies → 400 invalid-request listing each field", async () => {
        const cases: [unknown, string[]][] = [
          [{}, ["body.name"]],
          [{ name: "" }, ["body.name"]],
          [{ name: "x", rating: 6, email: "nope", lead_score: -1 }, [
            "body.email",
            "body.lead_score",
            "body.rating",
          ]],
          [{ name: "x", outreach_status: "client" }, ["body"]],
          [{ name: "x", reviews: 1.5 }, ["body.reviews"]],
          [{ name: "a\u0000b" }, ["body.name"]],
          [{ name: "x".repeat(501) }, ["body.name"]],
        ];
        for (const [body, expected] of cases) {
          const res = await call("POST", "/v1/leads", { body });
          assert.equal(res.status, 400, JSON.stringify(body));
          const problem = await res.json();
          assert.equal(problem.code, "invalid-request");
          assert.deepEqual(fieldsOf(problem), expected, JSON.stringify(body));
        }
      });

      await t.step("GET /v1/leads/:id → the lead and its recent events; 400 and 404", async () => {
        const lead = await create({ name: "Detail Diner" });
        const res = await call("GET", `/v1/leads/${lead.id}`, { auth: viewer });
        assert.equal(res.status, 200);
        const got = await res.json();
        assert.equal(got.name, "Detail Diner");
        assert.deepEqual(got.recent_events.map((e: Json) => [e.event_type, e.source]), [
          ["lead_created", "api:sa:minerva"],
        ]);
        assert.match(got.recent_events[0].time, /Z$/);

        const bad = await call("GET", "/v1/leads/not-a-uuid");
        assert.equal(bad.status, 400);
        assert.deepEqual(fieldsOf(await bad.json()), ["path.id"]);
        const missing = await call("GET", `/v1/leads/${crypto.randomUUID()}`);
        assert.equal(missing.status, 404);
        assert.equal((await missing.json()).code, "lead-not-found");
      });

      await t.step("PATCH /v1/leads/:id follows the state machine", async () => {
        const lead = await create({ name: "Patch Pub" });
        const path = `/v1/leads/${lead.id}`;
        const ok = await call("PATCH", path, {
          auth: operator,
          body: { outreach_status: "contacted", lead_score: 90, phone: null },
        });
        assert.equal(ok.status, 200);
        const patched = await ok.json();
        assert.equal(patched.outreach_status, "contacted");
        assert.equal(patched.lead_score, 90);

        const illegal = await call("PATCH", path, {
          auth: operator,
          body: { outreach_status: "client" },
        });
        assert.equal(illegal.status, 409);
        const problem = await illegal.json();
        assert.equal(problem.code, "illegal-transition");
        assert.deepEqual(problem.allowed, ["responded", "not_interested"]);
        assert.match(problem.detail, /responded, not_interested/);

        const events = (await (await call("GET", path)).json()).recent_events;
        assert.deepEqual(events.map((e: Json) => e.event_type), [
          "lead_updated",
          "status_changed",
          "lead_created",
        ]);
        assert.equal(events[1].source, "api:u-operator");

        const missing = await call("PATCH", `/v1/leads/${crypto.randomUUID()}`, {
          auth: operator,
          body: { name: "Ghost" },
        });
        assert.equal(missing.status, 404);
        assert.equal((await missing.json()).code, "lead-not-found");
        for (
          const [body, expected] of [
            [{}, ["body"]],
            [{ outreach_status: "won" }, ["body.outreach_status"]],
            [{ name: null }, ["body.name"]],
            [{ id: crypto.randomUUID() }, ["body"]],
          ] as [unknown, string[]][]
        ) {
          const res = await call("PATCH", path, { auth: operator, body });
          assert.equal(res.status, 400, JSON.stringify(body));
          assert.deepEqual(fieldsOf(await res.json()), expected, JSON.stringify(body));
        }
        const badId = await call("PATCH", "/v1/leads/123", { auth: operator, body: { name: "x" } });
        assert.equal(badId.status, 400);
        await badId.body?.cancel();
      });

      await t.step("GET /v1/leads filters and pages with an opaque cursor", async () => {
        const c = `${city}-list`;
        for (let i = 0; i < 7; i++) {
          await create({ name: `List Shop ${i}`, city: c, lead_score: i * 10 });
        }
        const list = async (query: string, auth = viewer) => {
          const res = await call("GET", `/v1/leads?city=${encodeURIComponent(c)}&${query}`, {
            auth,
          });
          assert.equal(res.status, 200, await res.clone().text());
          return await res.json();
        };
        const names: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page: { data: Json[]; next_cursor: string | null } = await list(
            `limit=3${cursor ? `&cursor=${cursor}` : ""}`,
          );
          names.push(...page.data.map((l) => l.name as string));
          cursor = page.next_cursor;
          pages++;
        } while (cursor !== null);
        assert.equal(pages, 3);
        assert.deepEqual(names, Array.from({ length: 7 }, (_, i) => `List Shop ${6 - i}`));
        assert.equal((await list("min_score=45")).data.length, 2);
        assert.equal((await list("q=shop%203")).data.length, 1);
        assert.equal((await list("status=new,contacted")).data.length, 7);
        assert.equal((await list("status=client")).data.length, 0);

        for (
          const [query, field] of [
            ["limit=201", "query.limit"],
            ["limit=0", "query.limit"],
            ["status=won", "query.status"],
            ["min_score=abc", "query.min_score"],
            ["cursor=garbage", "query.cursor"],
          ] as [string, string][]
        ) {
          const res = await call("GET", `/v1/leads?${query}`);
          assert.equal(res.status, 400, query);
          assert.deepEqual(fieldsOf(await res.json()), [field], query);
        }
      });

      await t.step("fuzzed bodies and queries never produce a 5xx", async () => {
        const target = (await create({ name: "Fuzz Target" })).id;
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.anything(),
              fc.record({ name: fc.string(), rating: fc.anything(), email: fc.string() }),
              fc.dictionary(
                fc.constantFrom("name", "city", "outreach_status", "lead_score"),
                fc.anything(),
              ),
            ),
            fc.constantFrom("POST", "PATCH"),
            async (body, method) => {
              const res = await call(
                method,
                method === "POST" ? "/v1/leads" : `/v1/leads/${target}`,
                {
                  auth: operator,
                  body,
                },
              );
              assert.ok(res.status < 500, `${method} ${JSON.stringify(body)} → ${res.status}`);
              if (res.status === 201) ids.push((await res.json()).id);
              else await res.body?.cancel();
            },
          ),
          { numRuns: 150 },
        );
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom("status", "min_score", "city", "category", "q", "cursor", "limit"),
            fc.string(),
            async (name, value) => {
              const res = await call("GET", `/v1/leads?${name}=${encodeURIComponent(value)}`);
              assert.ok(res.status < 500, `${name}=${JSON.stringify(value)} → ${res.status}`);
              await res.body?.cancel();
            },
          ),
          { numRuns: 150 },
        );
      });

      await t.step("the routes are in the OpenAPI document", async () => {
        const spec = await (await app.request("/openapi.json")).json();
        assert.ok(spec.paths["/v1/leads"]?.get && spec.paths["/v1/leads"]?.post);
        assert.ok(spec.paths["/v1/leads/{id}"]?.get && spec.paths["/v1/leads/{id}"]?.patch);
        assert.ok(spec.components.schemas.Lead);
      });
    } finally {
      const sql = deps.sql;
      await sql.query(
        `WITH gone AS (DELETE FROM businesses WHERE city LIKE $1 RETURNING id)
         DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
        [`Leadtown-${run}%`],
      ).catch(() => {});
      await sql.query(
        `WITH gone AS (DELETE FROM businesses WHERE id = ANY($1::uuid[]) RETURNING id)
         DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
        [ids],
      ).catch(() => {});
    }
  },
});
