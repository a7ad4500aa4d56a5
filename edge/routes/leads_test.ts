import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { runTag, testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import type { Deps } from "../../shared/deps.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { Runner } from "../../workers/runner.ts";
import type { TaskContext } from "../../workers/runner.ts";
import { leadWriteHandler } from "../../workers/tasks/lead_write.ts";
import { createApp } from "../app.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;
const fieldsOf = (problem: Json) =>
  (problem.invalid_fields as { field: string }[]).map((f) => f.field).sort();

Deno.test({
  name: "/v1/leads through the gateway: auth, create, get, list, patch and every error",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack);
    const { deps, app } = h;
    const { minerva, operator, viewer } = h.tokens;
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
    const run = runTag();
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
          [{ name: "x", outreach_status: "client" }, ["body.outreach_status"]],
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
            [{ id: crypto.randomUUID() }, ["body.id"]],
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
        // Sorted by score, ascending, paged: the cursor carries the sort.
        const byScore = await list("sort=lead_score&order=asc&limit=4");
        assert.deepEqual(byScore.data.map((l: Json) => l.lead_score), [0, 10, 20, 30]);
        const more = await list(`sort=lead_score&order=asc&limit=4&cursor=${byScore.next_cursor}`);
        assert.deepEqual(more.data.map((l: Json) => l.lead_score), [40, 50, 60]);
        assert.equal(more.next_cursor, null);
        const wrongSort = await call(
          "GET",
          `/v1/leads?city=${encodeURIComponent(c)}&sort=updated_at&cursor=${byScore.next_cursor}`,
        );
        assert.equal(wrongSort.status, 400);
        assert.deepEqual(fieldsOf(await wrongSort.json()), ["query.cursor"]);
        assert.equal((await list("has_website=false&has_email=false&source=api")).data.length, 7);
        assert.equal((await list("has_website=true")).data.length, 0);
        assert.equal((await list("created_after=2000-01-01T00:00:00Z")).data.length, 7);
        assert.equal((await list("updated_before=2000-01-01T00:00:00%2B02:00")).data.length, 0);
        await create({ name: "Crêperie Sainte-Anne", city: c });
        assert.deepEqual(
          (await list("q=creperie%20SAINTE")).data.map((l: Json) => l.name),
          ["Crêperie Sainte-Anne"],
        );

        for (
          const [query, field] of [
            ["limit=201", "query.limit"],
            ["limit=0", "query.limit"],
            ["status=won", "query.status"],
            ["min_score=abc", "query.min_score"],
            ["cursor=garbage", "query.cursor"],
            ["sort=name", "query.sort"],
            ["order=up", "query.order"],
            ["has_email=yes", "query.has_email"],
            ["has_website=1", "query.has_website"],
            ["created_after=yesterday", "query.created_after"],
            ["updated_before=2026-01-01", "query.updated_before"],
            ["source=" + "x".repeat(101), "query.source"],
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

/** Calls `app` with a bearer token and an optional JSON body. */
function caller(app: ReturnType<typeof createApp>) {
  return async (
    method: string,
    path: string,
    auth: string,
    options: { body?: unknown; headers?: Record<string, string> } = {},
  ) =>
    await app.request(path, {
      method,
      headers: {
        authorization: auth,
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
}

Deno.test({
  name: "/v1/leads through the database breaker: degraded reads, queued writes, applied once",
  // Deps hold a Neon Pool and the registry an SSE subscription (async teardown).
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const { deps, queue, app, breakers, run } = h;
    const call = caller(app);
    const { minerva, operator } = h.tokens;
    const city = `Breakertown-${run}`;
    const listPath = `/v1/leads?city=${city}`;
    const database = breakers.get("database");
    const countNamed = async (name: string) =>
      (await deps.sql.query("SELECT id FROM businesses WHERE city = $1 AND name = $2", [
        city,
        name,
      ])).rows.length;
    let lead: Json = {};
    const tasks: Record<string, string> = {};
    let runner: Runner | null = null;

    try {
      await t.step(
        "closed: reads and writes reach Postgres; 4xx pass through uncounted",
        async () => {
          const created = await call("POST", "/v1/leads", minerva, {
            body: { name: "Breaker Bar", city, source: "places", external_id: `bb-${run}` },
          });
          assert.equal(created.status, 201);
          lead = await created.json();
          const list = await call("GET", listPath, minerva);
          assert.equal(list.status, 200);
          assert.equal(list.headers.get("x-degraded"), null);
          assert.deepEqual((await list.json()).data.map((l: Json) => l.name), ["Breaker Bar"]);
          const one = await call("GET", `/v1/leads/${lead.id}`, minerva);
          assert.equal(one.status, 200);
          assert.equal((await one.json()).name, "Breaker Bar");

          // Each refusal more often than fail_max (5): the database answered every one.
          const dup = { name: "Again", source: "places", external_id: `bb-${run}` };
          const skip = { outreach_status: "client" };
          const ghost = `/v1/leads/${crypto.randomUUID()}`;
          const refusals: [string, string, string, unknown, number, string][] = [
            ["POST", "/v1/leads", minerva, dup, 409, "lead-exists"],
            ["PATCH", `/v1/leads/${lead.id}`, operator, skip, 409, "illegal-transition"],
            ["PATCH", ghost, operator, { name: "x" }, 404, "lead-not-found"],
            ["POST", "/v1/leads", minerva, { name: "" }, 400, "invalid-request"],
            ["GET", "/v1/leads?cursor=garbage", minerva, undefined, 400, "invalid-request"],
            // Last, so that nothing resets the run of consecutive outcomes they would make.
            ["GET", ghost, minerva, undefined, 404, "lead-not-found"],
          ];
          for (const [method, path, auth, body, status, code] of refusals) {
            for (let i = 0; i < 6; i++) {
              const res = await call(method, path, auth, { body });
              assert.equal(res.status, status, `${method} ${path}`);
              assert.equal((await res.json()).code, code, `${method} ${path}`);
            }
          }
          await waitUntil(async () => {
            const snap = (await breakers.list()).find((b) => b.name === "database")!;
            return snap.state === "closed" && snap.consecutiveFailures === 0;
          }, { what: "database breaker closed with no failures" });
          assert.equal(database.state, "closed");
        },
      );

      await t.step("forced open: a cached read answers degraded, an uncached one 503", async () => {
        await breakers.forceOpen("database");
        await waitUntil(() => database.state === "forced_open", { what: "forced open" });
        // The last good answers were stored in the background after the reads above.
        await waitUntil(async () => {
          const res = await call("GET", listPath, minerva);
          await res.body?.cancel();
          return res.status === 200;
        }, { what: "the cached list" });

        const list = await call("GET", listPath, operator);
        assert.equal(list.status, 200);
        assert.equal(list.headers.get("x-degraded"), "true");
        const page = await list.json();
        assert.equal(page.status, "degraded");
        assert.equal(page.message, "Database temporarily unavailable");
        assert.deepEqual(page.cached_data.data.map((l: Json) => l.name), ["Breaker Bar"]);
        const one = await call("GET", `/v1/leads/${lead.id}`, minerva);
        assert.equal(one.status, 200);
        assert.equal((await one.json()).cached_data.name, "Breaker Bar");

        for (const path of [`/v1/leads/${crypto.randomUUID()}`, `${listPath}&q=never-read`]) {
          const res = await call("GET", path, minerva);
          assert.equal(res.status, 503, path);
          assert.equal(res.headers.get("content-type"), "application/problem+json");
          assert.equal(res.headers.get("retry-after"), "30");
          const problem = await res.json();
          assert.equal(problem.code, "downstream-unavailable");
          assert.equal(problem.breaker, "database");
        }
        // Validation does not need the database.
        const bad = await call("GET", "/v1/leads?limit=0", minerva);
        assert.equal(bad.status, 400);
        await bad.body?.cancel();
      });

      await t.step("forced open: POST and PATCH are queued (202), not written", async () => {
        const key = `queued-${run}`;
        const body = { name: "Queued Bistro", city };
        const res = await call("POST", "/v1/leads", minerva, {
          body,
          headers: { "idempotency-key": key },
        });
        assert.equal(res.status, 202);
        const queued = await res.json();
        assert.equal(queued.status, "queued");
        assert.equal(queued.message, "Request queued for processing");
        assert.equal(queued.retry_after, 30);
        assert.equal(res.headers.get("retry-after"), "30");
        assert.equal(res.headers.get("location"), `/v1/tasks/${queued.task_id}`);
        tasks.create = queued.task_id;
        const task = await queue.getTask(queued.task_id);
        assert.equal(task?.type, "apply_lead_write");
        assert.equal(task?.status, "pending");
        const { write_key, ...payload } = task?.payload as Json;
        assert.deepEqual(payload, {
          op: "create",
          input: { name: "Queued Bistro", city, source: "api" },
          source: "api:sa:minerva",
        });
        // The request's key, so that the task and a late commit of the request apply once.
        assert.equal((write_key as Json).scope, "sa:minerva POST /v1/leads");
        assert.equal((write_key as Json).key, key);
        assert.equal(await countNamed("Queued Bistro"), 0);

        // The client's retry (same key) is the same task.
        const retry = await call("POST", "/v1/leads", minerva, {
          body,
          headers: { "idempotency-key": key },
        });
        assert.equal(retry.status, 202);
        assert.equal((await retry.json()).task_id, tasks.create);

        // Without a key: one task per request id and body (a client may resend its X-Request-Id).
        const byRequest = async (name: string) => {
          const res = await call("POST", "/v1/leads", minerva, {
            body: { name, city },
            headers: { "x-request-id": `rid-${run}` },
          });
          assert.equal(res.status, 202);
          return (await res.json()).task_id;
        };
        tasks.rid = await byRequest("Rid Diner");
        assert.equal(await byRequest("Rid Diner"), tasks.rid);
        tasks.rid2 = await byRequest("Rid Diner 2");
        assert.notEqual(tasks.rid2, tasks.rid);

        const patch = await call("PATCH", `/v1/leads/${lead.id}`, operator, {
          body: { outreach_status: "contacted", lead_score: 77 },
        });
        assert.equal(patch.status, 202);
        tasks.update = (await patch.json()).task_id;
        // Not checkable while the database is away: the worker dead-letters it.
        const illegal = await call("PATCH", `/v1/leads/${lead.id}`, operator, {
          body: { outreach_status: "meeting_scheduled" },
        });
        assert.equal(illegal.status, 202);
        tasks.illegal = (await illegal.json()).task_id;
        const { rows } = await deps.sql.query(
          "SELECT outreach_status FROM businesses WHERE id = $1",
          [lead.id],
        );
        assert.equal(rows[0].outreach_status, "new");
      });

      await t.step("after reset a worker applies each queued write exactly once", async () => {
        runner = new Runner({
          queue,
          breakers,
          handlers: { apply_lead_write: leadWriteHandler({ breaker: database }) },
          deps,
          concurrency: 1,
          pollMs: 50,
        });
        runner.start();
        await new Promise((r) => setTimeout(r, 150)); // several polls while forced open
        assert.equal((await queue.getTask(tasks.create!))?.status, "pending", "parked while open");

        await breakers.reset("database");
        const settled = (id: string, status: string) => async () =>
          (await queue.getTask(id))?.status === status;
        await waitUntil(settled(tasks.create!, "succeeded"), { what: "create applied" });
        await waitUntil(settled(tasks.update!, "succeeded"), { what: "update applied" });
        await waitUntil(settled(tasks.illegal!, "dead"), { what: "illegal dead-lettered" });
        await waitUntil(settled(tasks.rid2!, "succeeded"), { what: "second create applied" });
        assert.equal(await countNamed("Rid Diner"), 1);
        assert.equal(await countNamed("Rid Diner 2"), 1);

        const created = await queue.getTask(tasks.create!);
        assert.equal(created?.attempts, 1);
        assert.deepEqual(created?.result, {
          status: "created",
          lead_id: (created?.result as Json).lead_id,
          external_id: `task:${tasks.create}`,
        });
        const illegal = await queue.getTask(tasks.illegal!);
        assert.match(
          illegal?.lastError ?? "",
          /Cannot move lead from "contacted" to "meeting_scheduled"/,
        );

        const fresh = await call("GET", `/v1/leads/${lead.id}`, operator);
        assert.equal(fresh.status, 200);
        assert.equal(fresh.headers.get("x-degraded"), null);
        const got = await fresh.json();
        assert.equal(got.outreach_status, "contacted");
        assert.equal(got.lead_score, 77);
        assert.equal(got.recent_events[0].source, `api:u-operator:task:${tasks.update}`);

        // Delivered again (a crash after COMMIT): still one lead.
        const ctx: TaskContext = {
          deps: deps as Deps,
          taskId: tasks.create!,
          attempt: 2,
          leaseToken: "t",
          signal: new AbortController().signal,
          log: deps.log,
        };
        const again = await leadWriteHandler({ breaker: database })(
          created!.payload as never,
          ctx,
        );
        assert.equal(again.status, "already_applied");
        assert.equal(await countNamed("Queued Bistro"), 1);
      });

      await t.step(
        "a failing database is 503 dependency-unavailable, then trips the breaker",
        async () => {
          const down = Object.assign(new Error("Connection terminated unexpectedly"), {
            code: "ECONNRESET",
          });
          const broken = {
            ...deps,
            sql: {
              query: () => Promise.reject(down),
              connect: () => Promise.reject(down),
            },
          } as unknown as Deps;
          const bns = testNamespace();
          const brokenBreakers = createBreakerRegistry({
            redis: deps.redis,
            policies: { database: { fail_max: 2, reset_timeout_ms: 60_000 } },
            namespace: bns,
            flushMs: 5,
          });
          await brokenBreakers.start();
          try {
            const brokenApp = createApp(broken, {
              queue: createQueue(deps.redis, TASK_CATALOG, {
                ...deps.config.queue,
                namespace: bns,
              }),
              breakers: brokenBreakers,
            });
            const callBroken = caller(brokenApp);
            for (const [method, path] of [["GET", listPath], ["POST", "/v1/leads"]] as const) {
              const res = await callBroken(method, path, minerva, {
                body: method === "POST" ? { name: "Never", city } : undefined,
              });
              assert.equal(res.status, 503, `${method} ${path}`);
              assert.equal(res.headers.get("retry-after"), "5");
              assert.equal((await res.json()).code, "dependency-unavailable");
            }
            await waitUntil(() => brokenBreakers.get("database").state === "open", {
              what: "database breaker open",
            });
            const read = await callBroken("GET", `/v1/leads/${crypto.randomUUID()}`, minerva);
            assert.equal(read.status, 503);
            assert.equal((await read.json()).code, "downstream-unavailable");
            const queued = await callBroken("POST", "/v1/leads", minerva, {
              body: { name: "Later", city },
            });
            assert.equal(queued.status, 202);
            assert.equal((await queued.json()).status, "queued");

            // Without a registry the same failure is a 503 too, never an opaque 500.
            const plain = caller(createApp(broken, { queue }));
            const res = await plain("GET", listPath, minerva);
            assert.equal(res.status, 503);
            assert.equal((await res.json()).code, "dependency-unavailable");
          } finally {
            await brokenBreakers.stop();
          }
        },
      );

      await t.step("the 202 and degraded answers are in the OpenAPI document", async () => {
        const spec = await (await app.request("/openapi.json")).json();
        assert.ok(spec.paths["/v1/leads"].post.responses["202"]);
        assert.ok(spec.paths["/v1/leads/{id}"].patch.responses["202"]);
        assert.ok(spec.paths["/v1/leads"].get.responses["503"]);
        assert.ok(spec.components.schemas.DegradedLeadPage);
      });
    } finally {
      await (runner as Runner | null)?.stop();
      await deps.sql.query(
        `WITH gone AS (DELETE FROM businesses WHERE city = $1 RETURNING id)
         DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
        [city],
      ).catch(() => {});
    }
  },
});
