import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import type { Deps } from "../../shared/deps.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool and the registry an SSE subscription (async teardown).
const opts = noSanitizers;

type Json = Record<string, unknown>;
type App = ReturnType<typeof createApp>;

function caller(app: App) {
  return (
    auth: string | null,
    body: unknown,
    options: { raw?: string; type?: string } = {},
  ) =>
    app.request("/v1/events", {
      method: "POST",
      headers: {
        ...(auth === null ? {} : { authorization: auth }),
        "content-type": options.type ?? "application/json",
      },
      body: options.raw ?? JSON.stringify(body),
    });
}

Deno.test({
  name: "POST /v1/events through the gateway: per-event answers, bad input, auth, breaker",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const { deps, queue, app, breakers } = h;
    const post = caller(app);
    const { minerva, operator, viewer } = h.tokens;
    const gateway = await h.token("sa:api-gateway");
    const city = `Eventtown-${h.run}`;
    const lead = async (name: string) =>
      (await createLead(deps.sql, { name, city, source: "api" }, "test")).id;
    const [a, b] = [await lead("Event Eatery"), await lead("Event Emporium")];
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const uuid = () => crypto.randomUUID();
    const stored = async (ids: string[]) =>
      (await deps.sql.query<{ id: string; source: string; event_type: string }>(
        "SELECT id, source, event_type FROM lead_events WHERE id = ANY($1::uuid[]) ORDER BY source, id",
        [ids],
      )).rows;

    try {
      await t.step(
        "a mixed batch: exact stored, duplicates and rejected with reasons",
        async () => {
          const ids = Array.from({ length: 7 }, uuid);
          const good = {
            id: ids[0]!,
            time: iso(now - 60_000),
            lead_id: a,
            event_type: "email_opened",
          };
          const batch: unknown[] = [
            good,
            { ...good, id: ids[1], lead_id: uuid() },
            { ...good, id: ids[2], event_type: "email_teleported" },
            { ...good, id: ids[3], time: iso(now + 86_400_000) },
            { ...good, lead_id: b }, // the id of event 0
            {
              id: ids[5],
              time: iso(now - 120_000),
              lead_id: b,
              event_type: "page_view",
              event_data: { path: "/preview" },
              source: "site",
            },
            "not an event",
          ];
          const res = await post(minerva, { events: batch });
          assert.equal(res.status, 200);
          assert.deepEqual(await res.json(), {
            stored: [{ index: 0, id: ids[0] }, { index: 5, id: ids[5] }],
            duplicates: [{ index: 4, id: ids[0] }],
            rejected: [
              { index: 1, id: ids[1], reasons: ["lead_id: no lead has this id"] },
              {
                index: 2,
                id: ids[2],
                reasons: ['event_type: unknown event type "email_teleported"'],
              },
              {
                index: 3,
                id: ids[3],
                reasons: ["time: must not be more than 300 s in the future"],
              },
              { index: 6, reasons: ["event: must be an object (got string)"] },
            ],
          });

          // Resent (one re-stamped a minute later) with a new one, by another service.
          const fresh = { ...good, id: ids[6], lead_id: b, event_type: "email_clicked" };
          const again = await post(gateway, {
            events: [good, { ...batch[5] as Json, time: iso(now - 60_000) }, fresh],
          });
          assert.equal(again.status, 200);
          assert.deepEqual(await again.json(), {
            stored: [{ index: 2, id: ids[6] }],
            duplicates: [{ index: 0, id: ids[0] }, { index: 1, id: ids[5] }],
            rejected: [],
          });
          assert.deepEqual(
            (await stored(ids)).map((r) => [r.id, r.source, r.event_type]),
            [
              [ids[6], "api:sa:api-gateway", "email_clicked"],
              [ids[0], "api:sa:minerva", "email_opened"],
              [ids[5], "api:sa:minerva:site", "page_view"],
            ],
          );
        },
      );

      await t.step(
        "platform-owned event types cannot be forged: refused per event, the funnel unchanged",
        async () => {
          const forged = ["status_changed", "email_sent", "appointment_booked", "lead_created"]
            .map((event_type) => ({
              id: uuid(),
              time: iso(now - 60_000),
              lead_id: a,
              event_type,
              event_data: { from: "meeting_scheduled", to: "client" },
            }));
          const reply = {
            id: uuid(),
            time: iso(now - 60_000),
            lead_id: a,
            event_type: "email_replied",
          };
          const res = await post(minerva, { events: [...forged, reply] });
          assert.equal(res.status, 200);
          const body = await res.json();
          assert.deepEqual(body.stored, [{ index: 4, id: reply.id }]);
          assert.deepEqual(body.rejected.map((r: Json) => r.index), [0, 1, 2, 3]);
          for (const r of body.rejected as { reasons: string[] }[]) {
            assert.match(r.reasons[0]!, /is recorded by the platform only/);
          }
          assert.deepEqual((await stored(forged.map((f) => f.id))).length, 0);
        },
      );

      await t.step(
        "a malformed body or more than 1,000 events is 400, nothing stored",
        async () => {
          const event = () => ({ id: uuid(), time: iso(now), lead_id: a, event_type: "page_view" });
          const big = Array.from({ length: 1001 }, event);
          const cases: [unknown, string | null][] = [
            [{ events: big }, "body.events"],
            [{ events: [] }, "body.events"],
            [{}, "body.events"],
            [{ events: "x" }, "body.events"],
            [{ events: [event()], extra: true }, "body.extra"],
            [[event()], "body"],
          ];
          for (const [body, field] of cases) {
            const res = await post(minerva, body);
            assert.equal(res.status, 400, JSON.stringify(body).slice(0, 80));
            const problem = await res.json();
            assert.equal(problem.code, "invalid-request");
            assert.ok(
              (problem.invalid_fields as Json[]).some((f) => f.field === field),
              JSON.stringify(problem),
            );
          }
          assert.equal((await stored(big.map((e) => e.id))).length, 0);
          const broken = await post(minerva, null, { raw: '{"events": [' });
          assert.equal(broken.status, 400);
          assert.equal(broken.headers.get("content-type"), "application/problem+json");
          await broken.body?.cancel();
          const text = await post(minerva, null, { raw: "hello", type: "text/plain" });
          assert.equal(text.status, 415);
          await text.body?.cancel();
          // Exactly 1,000 is fine.
          const full = await post(minerva, { events: big.slice(0, 1000) });
          assert.equal(full.status, 200);
          assert.equal((await full.json()).stored.length, 1000);
          await deps.sql.query("DELETE FROM lead_events WHERE id = ANY($1::uuid[])", [
            big.map((e) => e.id),
          ]);
        },
      );

      await t.step("fuzzed events are answered 200 or 400, never 5xx", async () => {
        const field = fc.oneof(
          fc.constant(a),
          fc.uuid(),
          fc.constantFrom("page_view", "Page View", "", iso(now), iso(now + 3_600_000)),
          fc.string({ unit: "binary", maxLength: 12 }),
          fc.jsonValue({ maxDepth: 2 }),
        );
        const eventLike = fc.record({
          id: field,
          time: field,
          lead_id: field,
          event_type: field,
          event_data: fc.oneof(
            fc.dictionary(
              fc.string({ unit: "binary", maxLength: 6 }),
              fc.jsonValue({ maxDepth: 2 }),
            ),
            field,
          ),
          source: field,
        }, { requiredKeys: [] });
        await fc.assert(
          fc.asyncProperty(
            fc.array(fc.oneof(eventLike, fc.jsonValue({ maxDepth: 2 })), { maxLength: 8 }),
            async (events) => {
              const res = await post(minerva, { events });
              const body = await res.text();
              assert.ok(res.status === 200 || res.status === 400, `${res.status} ${body}`);
            },
          ),
          { numRuns: 60 },
        );
      });

      await t.step("no token → 401; a viewer → 403; an operator may ingest", async () => {
        const events = [{ id: uuid(), time: iso(now), lead_id: a, event_type: "call_logged" }];
        const anon = await post(null, { events });
        assert.equal(anon.status, 401);
        assert.equal((await anon.json()).code, "missing-token");
        const denied = await post(viewer, { events });
        assert.equal(denied.status, 403);
        assert.equal((await denied.json()).code, "forbidden");
        const ok = await post(operator, { events });
        assert.equal(ok.status, 200);
        assert.equal((await ok.json()).stored.length, 1);
      });

      await t.step(
        "the database breaker refusing: 503 with Retry-After, nothing queued",
        async () => {
          const database = breakers.get("database");
          await breakers.forceOpen("database");
          await waitUntil(() => database.state === "forced_open", { what: "forced open" });
          const events = [{ id: uuid(), time: iso(now), lead_id: a, event_type: "page_view" }];
          const res = await post(minerva, { events });
          assert.equal(res.status, 503);
          assert.equal(res.headers.get("retry-after"), "30");
          const problem = await res.json();
          assert.equal(problem.code, "downstream-unavailable");
          assert.equal(problem.breaker, "database");
          assert.equal((await stored([events[0]!.id])).length, 0);
          assert.equal((await queue.stats()).enqueued ?? 0, 0, "nothing was queued");
          // Validation needs no database.
          const bad = await post(minerva, { events: [] });
          assert.equal(bad.status, 400);
          await bad.body?.cancel();

          await breakers.reset("database");
          await waitUntil(() => database.state === "closed", { what: "closed" });
          const after = await post(minerva, { events });
          assert.equal(after.status, 200);
          assert.equal((await after.json()).stored.length, 1);
        },
      );

      await t.step("a failing database is 503 dependency-unavailable, never 500", async () => {
        const down = Object.assign(new Error("Connection terminated unexpectedly"), {
          code: "ECONNRESET",
        });
        const broken = {
          ...deps,
          sql: { query: () => Promise.reject(down), connect: () => Promise.reject(down) },
        } as unknown as Deps;
        const events = [{ id: uuid(), time: iso(now), lead_id: a, event_type: "page_view" }];
        for (const guarded of [true, false]) {
          const bns = testNamespace();
          const registry = createBreakerRegistry({
            redis: deps.redis,
            policies: { database: { fail_max: 50, reset_timeout_ms: 60_000 } },
            namespace: bns,
            flushMs: 5,
          });
          await registry.start();
          try {
            const brokenApp = createApp(broken, {
              queue: createQueue(deps.redis, TASK_CATALOG, {
                ...deps.config.queue,
                namespace: bns,
              }),
              ...(guarded ? { breakers: registry } : {}),
            });
            const res = await caller(brokenApp)(minerva, { events });
            assert.equal(res.status, 503, `guarded: ${guarded}`);
            assert.equal(res.headers.get("retry-after"), "5");
            assert.equal((await res.json()).code, "dependency-unavailable");
          } finally {
            await registry.stop();
          }
        }
      });

      await t.step("the route and the event schema are in the OpenAPI document", async () => {
        const spec = await (await app.request("/openapi.json")).json();
        const op = spec.paths["/v1/events"].post;
        assert.ok(op.responses["200"] && op.responses["400"] && op.responses["503"]);
        const event = spec.components.schemas.IngestEvent;
        assert.deepEqual(event.required, ["id", "time", "lead_id", "event_type"]);
        assert.ok(event.properties.event_type.enum.includes("email_opened"));
        assert.equal(spec.components.schemas.IngestRequest.properties.events.maxItems, 1000);
      });
    } finally {
      await deps.sql.query(
        `WITH gone AS (DELETE FROM businesses WHERE city = $1 RETURNING id)
         DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
        [city],
      ).catch(() => {});
    }
  },
});
