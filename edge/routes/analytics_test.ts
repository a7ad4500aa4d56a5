import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { bookings, funnel } from "../../shared/analytics/queries.ts";
import { directMetrics } from "../../testing/analytics.ts";
import { bucketStart } from "../../shared/analytics/tier.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import type { Deps } from "../../shared/deps.ts";
import { recordLeadEvents } from "../../shared/leads/events.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool and the registry an SSE subscription (async teardown).
const opts = noSanitizers;

type Json = Record<string, unknown>;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();
const uuid = () => crypto.randomUUID();

Deno.test({
  name: "/v1/analytics through the gateway on the test stack",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const { deps, app, breakers } = h;
    const { minerva, viewer } = h.tokens;
    const gateway = await h.token("sa:api-gateway");
    const call = (path: string, auth: string | null = viewer, init: RequestInit = {}) =>
      app.request(path, {
        ...init,
        headers: {
          ...(auth === null ? {} : { authorization: auth }),
          ...(init.body ? { "content-type": "application/json" } : {}),
        },
      });
    const ingest = async (events: Json[]) => {
      const res = await call("/v1/events", minerva, {
        method: "POST",
        body: JSON.stringify({ events }),
      });
      assert.equal(res.status, 200);
      const result = await res.json();
      assert.equal(result.stored.length, events.length, JSON.stringify(result.rejected));
    };
    const city = `Metricstown-${h.run}`;
    const leads: string[] = [];
    for (let i = 0; i < 4; i++) {
      leads.push((await createLead(deps.sql, { name: `M${i}`, city, source: "api" }, "test")).id);
    }
    // A random hour 10–50 days ago: inside any retention, and an hour no
    // other suite writes these event types into.
    const now = Date.now();
    const base = bucketStart(now - 10 * DAY - Math.floor(Math.random() * 40 * 24) * HOUR, "1h");
    // Ranges no earlier run asked for: degraded answers live in the shared Redis.
    const unique = Math.floor(Math.random() * DAY);
    const q = (o: Record<string, string>) => new URLSearchParams(o).toString();

    try {
      await t.step("capabilities: the recorded tier, 3 on plain Postgres", async () => {
        const res = await call("/v1/analytics/capabilities");
        assert.equal(res.status, 200);
        const body = await res.json();
        const { rows } = await deps.sql.query<{ tier: number; ts: boolean }>(
          `SELECT t.tier, EXISTS (SELECT 1 FROM pg_available_extensions
                                   WHERE name = 'timescaledb') AS ts
             FROM analytics_tier t`,
        );
        assert.equal(body.tier, rows[0]!.tier);
        if (!rows[0]!.ts) {
          assert.equal(body.tier, 3);
          assert.equal(body.name, "postgresql");
          assert.deepEqual(body.native, {});
          assert.match(body.emulated.bucketing, /date_bin/);
          assert.match(body.emulated.hourly_rollup, /lead_metrics_hourly/);
        }
        assert.match(body.detected_at, /Z$/);
        assert.equal(typeof body.details.server_version, "string");
      });

      await t.step(
        "lead-metrics after ingest equals a direct GROUP BY, without a refresh",
        async () => {
          const types = ["page_view", "email_opened", "form_submitted"];
          const events = Array.from({ length: 150 }, (_, i) => ({
            id: uuid(),
            // Bucket edges included: the first and last millisecond of an hour.
            time: iso(i % 10 === 0 ? base + (i % 3) * HOUR : base + ((i * 7_919_993) % (3 * HOUR))),
            lead_id: leads[i % leads.length]!,
            event_type: types[i % types.length]!,
          }));
          events.push({ ...events[1]!, id: uuid(), time: iso(base + 3 * HOUR - 1) });
          await ingest(events);
          const from = new Date(base);
          const to = new Date(base + 3 * HOUR);
          for (
            const [bucket, eventType] of [["1h", undefined], ["1h", "page_view"], [
              "1d",
              "email_opened",
            ]]
          ) {
            const query = { from: iso(base), to: iso(base + 3 * HOUR), bucket: bucket! };
            const res = await call(
              `/v1/analytics/lead-metrics?${
                q(eventType ? { ...query, event_type: eventType } : query)
              }`,
            );
            assert.equal(res.status, 200);
            const body = await res.json();
            const expected = await directMetrics(deps.sql, {
              from,
              to,
              bucket: bucket as "1h" | "1d",
              ...(eventType ? { types: [eventType] } : {}),
            });
            assert.deepEqual(body.data, expected, `${bucket} ${eventType}`);
            assert.equal(body.bucket, bucket);
            assert.equal(body.event_type, eventType ?? null);
            assert.equal(body.from, iso(base));
            // Our own events are all there (other suites may add more only at 1d).
            const ours = events.filter((e) => !eventType || e.event_type === eventType).length;
            const total = (body.data as Json[]).reduce((n, r) => n + (r.event_count as number), 0);
            assert.ok(total >= ours, `${total} >= ${ours}`);
            if (bucket === "1h" && !eventType) {
              assert.equal(total, ours);
              assert.deepEqual(
                [...new Set((body.data as Json[]).map((r) => r.bucket))],
                [iso(base), iso(base + HOUR), iso(base + 2 * HOUR)],
              );
            }
          }
        },
      );

      await t.step("funnel and bookings: their shapes, equal to the queries", async () => {
        const from = base + 4 * HOUR;
        const to = from + DAY;
        const walk = ["contacted", "responded", "meeting_scheduled", "client"];
        const events: Json[] = [];
        leads.forEach((lead, i) => {
          // Lead i reaches stage i (4, 3, 2, 1 leads per stage).
          walk.slice(0, i + 1).forEach((stage, k) =>
            events.push({
              id: uuid(),
              time: iso(from + (i * 4 + k) * 60_000),
              lead_id: lead,
              event_type: "status_changed",
              event_data: { from: k === 0 ? "new" : walk[k - 1], to: stage },
            })
          );
          events.push({
            id: uuid(),
            time: iso(from + 2 * HOUR + i * 60_000),
            lead_id: lead,
            event_type: "appointment_booked",
          });
        });
        events.push({
          id: uuid(),
          time: iso(from + 5 * HOUR),
          lead_id: leads[0]!,
          event_type: "appointment_cancelled",
        });
        // Platform-owned types: recorded the way the platform records them
        // (POST /v1/events refuses them), with the same ids and times.
        await recordLeadEvents(
          deps.sql,
          events.map((e) => ({
            id: e.id as string,
            time: e.time as string,
            lead_id: e.lead_id as string,
            event_type: e.event_type as string,
            event_data: (e.event_data ?? {}) as Record<string, unknown>,
            source: "test",
          })),
        );
        const range = `from=${encodeURIComponent(iso(from))}&to=${encodeURIComponent(iso(to))}`;

        const f = await call(`/v1/analytics/funnel?${range}`, minerva);
        assert.equal(f.status, 200);
        const fBody = await f.json();
        assert.equal(fBody.from, iso(from));
        assert.deepEqual(
          fBody.stages.map((s: Json) => s.stage),
          ["contacted", "responded", "meeting_scheduled", "client"],
        );
        for (const s of fBody.stages as Json[]) {
          assert.equal(typeof s.leads, "number");
          assert.ok(s.rate_from_first === null || typeof s.rate_from_first === "number");
        }
        assert.equal(fBody.stages[0].rate_from_previous, null);
        assert.ok(fBody.stages[0].leads >= 4 && fBody.stages[3].leads >= 1);
        assert.deepEqual(fBody, await funnel(deps.sql, { from: new Date(from), to: new Date(to) }));

        const b = await call(`/v1/analytics/bookings?${range}`);
        assert.equal(b.status, 200);
        const bBody = await b.json();
        assert.deepEqual(
          bBody,
          await bookings(deps.sql, { from: new Date(from), to: new Date(to) }),
        );
        assert.deepEqual(Object.keys(bBody).sort(), [
          "booked",
          "cancelled",
          "from",
          "kept",
          "leads",
          "success_rate",
          "to",
        ]);
        assert.ok(bBody.booked >= 4 && bBody.cancelled >= 1);
        assert.equal(bBody.kept, bBody.booked - bBody.cancelled);
        assert.equal(bBody.success_rate, bBody.kept / bBody.booked);
      });

      await t.step(
        "bad ranges are 400 invalid-range; bad parameters 400 invalid-request",
        async () => {
          const y = "2026-01-01T00:00:00Z";
          const ranges: [string, Record<string, string>][] = [
            ["lead-metrics", { from: "2026-01-02T00:00:00Z", to: y }],
            ["lead-metrics", { from: y, to: y }],
            ["lead-metrics", { from: "2025-01-01T00:00:00Z", to: "2026-01-03T00:00:00Z" }],
            ["lead-metrics", { from: "yesterday", to: y }],
            ["lead-metrics", { from: "2025-12-01", to: y }],
            ["lead-metrics", { from: "2025-12-01T00:00:00", to: y }],
            ["lead-metrics", { from: "2025-13-01T00:00:00Z", to: y }],
            ["funnel", { from: y, to: "not a time" }],
            ["funnel", { from: "2010-01-01T00:00:00Z", to: y }],
            ["bookings", { from: y, to: "2025-06-01T00:00:00+02:00" }],
          ];
          for (const [path, params] of ranges) {
            const res = await call(`/v1/analytics/${path}?${q(params)}`);
            assert.equal(res.status, 400, `${path} ${JSON.stringify(params)}`);
            assert.equal(res.headers.get("content-type"), "application/problem+json");
            const problem = await res.json();
            assert.equal(problem.code, "invalid-range", JSON.stringify(problem));
            assert.equal(problem.type, "/problems/invalid-range");
            assert.equal(typeof problem.detail, "string");
          }
          // A year of hours is fine at 1d, and exactly 366 days at 1h.
          for (
            const params of [
              { from: "2025-01-01T00:00:00Z", to: "2026-01-03T00:00:00Z", bucket: "1d" },
              { from: "2025-01-01T00:00:00Z", to: "2026-01-02T00:00:00Z", bucket: "1h" },
            ]
          ) {
            const res = await call(`/v1/analytics/lead-metrics?${q(params)}`);
            assert.equal(res.status, 200, JSON.stringify(params));
            await res.body?.cancel();
          }
          const requests: [string, string][] = [
            [`lead-metrics?${q({ to: y })}`, "query.from"],
            [`lead-metrics?${q({ from: y, to: y, bucket: "5m" })}`, "query.bucket"],
            [`lead-metrics?${q({ from: y, to: y, event_type: "Bad Type" })}`, "query.event_type"],
            [`funnel?${q({ from: y })}`, "query.to"],
          ];
          for (const [path, field] of requests) {
            const res = await call(`/v1/analytics/${path}`);
            assert.equal(res.status, 400, path);
            const problem = await res.json();
            assert.equal(problem.code, "invalid-request");
            assert.deepEqual(problem.invalid_fields.map((f: Json) => f.field), [field]);
          }
        },
      );

      await t.step(
        "no token → 401; sa:api-gateway → 403; viewer and Minerva read; POST → 405",
        async () => {
          const path = "/v1/analytics/capabilities";
          const anon = await call(path, null);
          assert.equal(anon.status, 401);
          assert.equal((await anon.json()).code, "missing-token");
          const denied = await call(path, gateway);
          assert.equal(denied.status, 403);
          assert.equal((await denied.json()).code, "forbidden");
          for (const auth of [viewer, minerva]) {
            const res = await call(path, auth);
            assert.equal(res.status, 200);
            await res.body?.cancel();
          }
          // Routing comes before authorization: a method the route lacks is 405.
          const post = await call(path, minerva, { method: "POST", body: "{}" });
          assert.equal(post.status, 405);
          assert.equal(post.headers.get("allow"), "GET, HEAD");
          await post.body?.cancel();
        },
      );

      await t.step("analytics forced open: the cached answer degraded, none → 503", async () => {
        const analytics = breakers.get("analytics");
        const cachedPath = `/v1/analytics/lead-metrics?${
          q({ from: iso(base), to: iso(base + 3 * HOUR), bucket: "1h" })
        }`;
        const fresh = await call(cachedPath);
        assert.equal(fresh.status, 200);
        const answer = await fresh.json();
        // The last good answer is stored in the background.
        await breakers.forceOpen("analytics");
        await waitUntil(() => analytics.state === "forced_open", { what: "forced open" });
        await waitUntil(async () => {
          const res = await call(cachedPath);
          await res.body?.cancel();
          return res.status === 200;
        }, { what: "the cached answer" });

        const res = await call(cachedPath, minerva);
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("x-degraded"), "true");
        const degraded = await res.json();
        assert.equal(degraded.status, "degraded");
        assert.equal(degraded.message, "Analytics temporarily unavailable");
        assert.deepEqual(degraded.cached_data, answer);
        assert.equal(degraded.retry_after, 30);

        // A range never asked before (unique to this run) has no cached answer.
        const never = `/v1/analytics/bookings?${
          q({ from: iso(base + 7 * DAY), to: iso(base + 8 * DAY + unique) })
        }`;
        const missing = await call(never);
        assert.equal(missing.status, 503);
        assert.equal(missing.headers.get("retry-after"), "30");
        const problem = await missing.json();
        assert.equal(problem.code, "downstream-unavailable");
        assert.equal(problem.breaker, "analytics");
        assert.equal(problem.title, "Downstream temporarily unavailable");
        assert.match(problem.detail, /analytics circuit breaker/);

        // Validation needs no database.
        const bad = await call(`/v1/analytics/funnel?${q({ from: "x", to: "y" })}`);
        assert.equal(bad.status, 400);
        assert.equal((await bad.json()).code, "invalid-range");

        await breakers.reset("analytics");
        await waitUntil(() => analytics.state === "closed", { what: "closed" });
        const back = await call(never);
        assert.equal(back.status, 200);
        assert.equal(back.headers.get("x-degraded"), null);
        await back.body?.cancel();
      });

      await t.step(
        "a failing database is 503 dependency-unavailable, then opens the breaker",
        async () => {
          const down = Object.assign(new Error("Connection terminated unexpectedly"), {
            code: "ECONNRESET",
          });
          const broken = {
            ...deps,
            sql: { query: () => Promise.reject(down), connect: () => Promise.reject(down) },
          } as unknown as Deps;
          const bns = testNamespace();
          const registry = createBreakerRegistry({
            redis: deps.redis,
            policies: {
              database: { fail_max: 5, reset_timeout_ms: 60_000 },
              analytics: { fail_max: 2, reset_timeout_ms: 60_000 },
            },
            namespace: bns,
            flushMs: 5,
          });
          await registry.start();
          try {
            const brokenQueue = createQueue(deps.redis, TASK_CATALOG, {
              ...deps.config.queue,
              namespace: bns,
            });
            const guarded = createApp(broken, { queue: brokenQueue, breakers: registry });
            const plain = createApp(broken, { queue: brokenQueue });
            const get = (a: typeof app, path: string) =>
              a.request(path, { headers: { authorization: viewer } });
            const range = q({ from: iso(base + 9 * DAY), to: iso(base + 10 * DAY + unique) });
            for (const path of ["capabilities", `funnel?${range}`]) {
              const res = await get(guarded, `/v1/analytics/${path}`);
              assert.equal(res.status, 503, path);
              assert.equal(res.headers.get("retry-after"), "5");
              assert.equal((await res.json()).code, "dependency-unavailable");
            }
            await waitUntil(() => registry.get("analytics").state === "open", {
              what: "analytics breaker open",
            });
            const open = await get(guarded, `/v1/analytics/bookings?${range}`);
            assert.equal(open.status, 503);
            assert.equal((await open.json()).code, "downstream-unavailable");

            // Without a registry the same failure is a 503 too, never an opaque 500.
            const res = await get(plain, `/v1/analytics/lead-metrics?${range}`);
            assert.equal(res.status, 503);
            assert.equal((await res.json()).code, "dependency-unavailable");
          } finally {
            await registry.stop();
          }
        },
      );

      await t.step("the routes are in the OpenAPI document", async () => {
        const spec = await (await app.request("/openapi.json")).json();
        for (const path of ["capabilities", "lead-metrics", "funnel", "bookings"]) {
          const op = spec.paths[`/v1/analytics/${path}`]?.get;
          assert.ok(op?.responses["200"] && op.responses["503"], path);
        }
        // Its own query parameters (the chain's X-Request-Id is a shared $ref).
        const params = spec.paths["/v1/analytics/lead-metrics"].get.parameters
          .filter((p: Json) => p.in === "query").map((p: Json) => p.name).sort();
        assert.deepEqual(params, ["bucket", "event_type", "from", "to"]);
        assert.ok(spec.components.schemas.DegradedLeadMetrics);
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
