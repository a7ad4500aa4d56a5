import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;
const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const fieldsOf = (problem: Json) =>
  (problem.invalid_fields as { field: string }[]).map((f) => f.field).sort();

Deno.test({
  name: "/v1/appointments through the gateway: book (202 + task), validation, list by range",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const book = (json: unknown, auth?: string | null) =>
      h.call("POST", "/v1/appointments", { json, auth });
    const tomorrow = iso(Math.ceil((Date.now() + DAY) / 60_000) * 60_000);

    try {
      const lead = await h.lead({ name: `Cove Florist ${h.run}`, email: "hi@florist.example" });
      const other = await h.lead({ name: `Anchor Pub ${h.run}` });
      const valid = {
        lead_id: lead.id,
        starts_at: tomorrow,
        duration_min: 30,
        attendee_email: "hi@florist.example",
      };

      await t.step("no token → 401; a viewer may list but not book → 403", async () => {
        const anon = await book(valid, null);
        assert.equal(anon.status, 401);
        await anon.body?.cancel();
        const denied = await book(valid, h.tokens.viewer);
        assert.equal(denied.status, 403);
        assert.equal((await denied.json()).code, "forbidden");
        const list = await h.call("GET", "/v1/appointments", { auth: h.tokens.viewer });
        assert.equal(list.status, 200);
        await list.body?.cancel();
        const anonList = await h.call("GET", "/v1/appointments", { auth: null });
        assert.equal(anonList.status, 401);
        await anonList.body?.cancel();
      });

      await t.step("POST queues book_appointment: 202, Location, the task's payload", async () => {
        const res = await book({ ...valid, confirmation: { sender_name: "Maya", agenda: "Site" } });
        assert.equal(res.status, 202, await res.clone().text());
        const body = await res.json();
        assert.equal(body.status, "queued");
        assert.equal(body.created, true);
        assert.equal(res.headers.get("location"), `/v1/tasks/${body.task_id}`);
        const task = await h.queue.getTask(body.task_id);
        assert.equal(task?.type, "book_appointment");
        assert.deepEqual(task?.payload, {
          ...valid,
          confirmation: { sender_name: "Maya", agenda: "Site" },
        });
        // The same request again (a client retry without a key) is the same task.
        const again = await book({
          ...valid,
          confirmation: { sender_name: "Maya", agenda: "Site" },
        });
        assert.equal((await again.json()).task_id, body.task_id);
        // Operators may book too; confirmation defaults to {}.
        const op = await h.call("POST", "/v1/appointments", {
          auth: h.tokens.operator,
          json: { ...valid, lead_id: other.id },
        });
        assert.equal(op.status, 202);
        const opTask = await h.queue.getTask((await op.json()).task_id);
        assert.deepEqual((opTask?.payload as Json).confirmation, {});
      });

      await t.step(
        "past start → 422 time-in-past; unknown lead → 404; bad confirmation → 422",
        async () => {
          const cases: [Json, number, string][] = [
            [{ ...valid, starts_at: iso(Date.now() - 60_000) }, 422, "time-in-past"],
            [{ ...valid, starts_at: "2001-01-01T09:00:00+01:00" }, 422, "time-in-past"],
            [{ ...valid, lead_id: crypto.randomUUID() }, 404, "lead-not-found"],
            [
              { ...valid, confirmation: { meeting_url: "ftp://files.example" } },
              422,
              "invalid-template-variables",
            ],
            [
              { ...valid, confirmation: { time_zone: "Mars/Olympus" } },
              422,
              "invalid-template-variables",
            ],
          ];
          for (const [json, status, code] of cases) {
            const res = await book(json);
            assert.equal(res.status, status, JSON.stringify(json));
            assert.equal((await res.json()).code, code, JSON.stringify(json));
          }
        },
      );

      await t.step("malformed bodies → 400 invalid-request naming the field", async () => {
        const cases: [unknown, string[]][] = [
          [{ ...valid, duration_min: 3 }, ["body.duration_min"]],
          [{ ...valid, duration_min: 30.5 }, ["body.duration_min"]],
          [{ ...valid, attendee_email: "nobody" }, ["body.attendee_email"]],
          [{ ...valid, starts_at: "2030-01-01 10:00" }, ["body.starts_at"]],
          [{ ...valid, starts_at: "2030-02-30T10:00:00Z" }, ["body.starts_at"]],
          [{ ...valid, lead_id: undefined }, ["body.lead_id"]],
          [{ ...valid, room: "A" }, ["body.room"]],
        ];
        for (const [json, fields] of cases) {
          const res = await book(json);
          assert.equal(res.status, 400, JSON.stringify(json));
          assert.deepEqual(fieldsOf(await res.json()), fields, JSON.stringify(json));
        }
      });

      await t.step("GET lists [from, to) earliest first with lead names", async () => {
        // A random day in the 22nd century: no other suite books there.
        const base = Date.UTC(2100, 0, 1) + Math.floor(Math.random() * 36_000) * DAY +
          9 * 3_600_000;
        const rows: [string, number][] = [
          [other.id, base + DAY],
          [lead.id, base],
          [lead.id, base + 2 * DAY],
          [other.id, base + 40 * DAY], // outside the range asked for below
        ];
        for (const [id, at] of rows) {
          await h.deps.sql.query(
            `INSERT INTO appointments (business_id, starts_at, duration_min, attendee_email, day)
             VALUES ($1, $2, 45, 'a@b.example', ($2::timestamptz AT TIME ZONE 'UTC')::date)`,
            [id, iso(at)],
          );
        }
        const list = async (query: string, auth = h.tokens.viewer) => {
          const res = await h.call("GET", `/v1/appointments?${query}`, { auth });
          assert.equal(res.status, 200, await res.clone().text());
          return await res.json();
        };
        const from = encodeURIComponent(iso(base - 3_600_000));
        const page = await list(`from=${from}&to=${encodeURIComponent(iso(base + 3 * DAY))}`);
        assert.equal(page.next_cursor, null);
        assert.deepEqual(
          page.data.map((a: Json) => [a.lead_name, a.starts_at]),
          [
            [lead.name, iso(base)],
            [other.name, iso(base + DAY)],
            [lead.name, iso(base + 2 * DAY)],
          ],
        );
        assert.deepEqual(Object.keys(page.data[0]).sort(), [
          "attendee_email",
          "cancel_reason",
          "cancelled_at",
          "created_at",
          "day",
          "duration_min",
          "id",
          "lead_id",
          "lead_name",
          "sequence",
          "starts_at",
          "status",
          "task_id",
          "time_zone",
          "updated_at",
        ]);
        assert.equal(page.data[0].lead_id, lead.id);
        assert.equal(page.data[0].status, "booked");
        // `to` is exclusive; `to` defaults to from + 30 days; limit pages with next_cursor.
        const exclusive = await list(`from=${from}&to=${encodeURIComponent(iso(base + DAY))}`);
        assert.equal(exclusive.data.length, 1);
        assert.equal((await list(`from=${from}`)).data.length, 3);
        const limited = await list(`from=${from}&limit=2`);
        assert.equal(limited.data.length, 2);
        assert.equal(typeof limited.next_cursor, "string");
        const rest = await list(`from=${from}&limit=2&cursor=${limited.next_cursor}`);
        assert.deepEqual(
          [...limited.data, ...rest.data].map((a: Json) => a.starts_at),
          [iso(base), iso(base + DAY), iso(base + 2 * DAY)],
        );
        assert.equal(rest.next_cursor, null);
        // The default window (now → 30 days) does not reach the 22nd century.
        const now = await list("");
        assert.ok(now.data.every((a: Json) => a.lead_id !== lead.id && a.lead_id !== other.id));
      });

      await t.step(
        "GET refuses from > to, ranges over 366 days and bad instants → 400",
        async () => {
          const cases: [string, string][] = [
            ["from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "query.to"],
            ["from=2030-01-01T00:00:00Z&to=2031-01-03T00:00:00Z", "query.to"],
            ["from=yesterday", "query.from"],
            ["to=2030-01-01", "query.to"],
            ["limit=0", "query.limit"],
            ["limit=5000", "query.limit"],
            ["cursor=bm90LWEtY3Vyc29y", "query.cursor"],
            ["cursor=%21%21", "query.cursor"],
          ];
          for (const [query, field] of cases) {
            const res = await h.call("GET", `/v1/appointments?${query}`);
            assert.equal(res.status, 400, query);
            const problem = await res.json();
            assert.equal(problem.code, "invalid-request");
            assert.deepEqual(fieldsOf(problem), [field], query);
          }
          // Exactly 366 days is allowed; the far past and future are valid instants.
          const ok = await h.call(
            "GET",
            "/v1/appointments?from=0001-01-01T00:00:00Z&to=0001-12-31T00:00:00Z",
          );
          assert.equal(ok.status, 200, await ok.clone().text());
          await ok.body?.cancel();
          const leap = await h.call(
            "GET",
            "/v1/appointments?from=9999-01-01T00:00:00Z&to=9999-12-31T23:59:59Z",
          );
          assert.equal(leap.status, 200);
          await leap.body?.cancel();
        },
      );

      await t.step("fuzzed bodies and queries never produce a 5xx", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.anything(),
              fc.record({
                lead_id: fc.constantFrom(lead.id, "x"),
                starts_at: fc.oneof(
                  fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
                  fc.string(),
                ),
                duration_min: fc.oneof(fc.integer(), fc.double()),
                attendee_email: fc.oneof(fc.emailAddress(), fc.string()),
                confirmation: fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
              }, { requiredKeys: [] }),
            ),
            async (json) => {
              const res = await book(json);
              assert.ok(res.status < 500, `${JSON.stringify(json)} → ${res.status}`);
              await res.body?.cancel();
            },
          ),
          { numRuns: 150 },
        );
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom("from", "to", "limit"),
            fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
            async (name, value) => {
              const res = await h.call(
                "GET",
                `/v1/appointments?${name}=${encodeURIComponent(value)}`,
              );
              assert.ok(res.status < 500, `${name}=${JSON.stringify(value)} → ${res.status}`);
              await res.body?.cancel();
            },
          ),
          { numRuns: 150 },
        );
      });

      await t.step("both routes are in the OpenAPI document", async () => {
        const spec = await (await h.app.request("/openapi.json")).json();
        assert.ok(spec.paths["/v1/appointments"]?.get && spec.paths["/v1/appointments"]?.post);
        assert.ok(spec.components.schemas.Appointment);
      });
    } finally {
      await h.cleanup();
    }
  },
});
