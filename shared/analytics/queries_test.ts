import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { startTestDatabase } from "../../testing/database.ts";
import { type NewLeadEvent, recordLeadEvents } from "../leads/events.ts";
import {
  bookings,
  checkRange,
  funnel,
  InvalidAnalyticsRangeError,
  leadMetrics,
} from "./queries.ts";
import { refreshLeadMetrics } from "./rollup.ts";
import { DAY, HOUR, migratedDatabase } from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

const FROM = Date.parse("2031-05-01T00:00:00Z");
const TO = FROM + 7 * DAY;

function walk(leadId: string, start: number, stages: string[]): NewLeadEvent[] {
  let from = "new";
  return stages.map((to, i) => {
    const e = {
      lead_id: leadId,
      event_type: "status_changed",
      event_data: { from, to },
      source: "test",
      time: new Date(start + i * HOUR),
    };
    from = to;
    return e;
  });
}

async function record(sql: Pool, events: NewLeadEvent[]): Promise<void> {
  await recordLeadEvents(sql, events);
}

async function currentDatabase(sql: Pool): Promise<string> {
  const { rows } = await sql.query<{ name: string }>("SELECT current_database() AS name");
  return rows[0]!.name;
}

Deno.test({
  name: "the analytics queries on plain Postgres",
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    const sql = await migratedDatabase(db);
    const lead = () => crypto.randomUUID();

    await t.step("funnel() follows the leads first contacted in the range", async () => {
      const full = ["contacted", "responded", "meeting_scheduled", "client"];
      const events: NewLeadEvent[] = [];
      for (let i = 0; i < 10; i++) {
        // 10 contacted, 6 responded, 3 meetings, 1 client
        const reached = i < 1 ? 4 : i < 3 ? 3 : i < 6 ? 2 : 1;
        events.push(...walk(lead(), FROM + i * HOUR, full.slice(0, reached)));
      }
      // Contacted before the range: not in the cohort, although it responds inside it.
      const early = lead();
      events.push(...walk(early, FROM - 2 * DAY, ["contacted"]));
      events.push({
        lead_id: early,
        event_type: "status_changed",
        event_data: { from: "contacted", to: "responded" },
        source: "test",
        time: new Date(FROM + DAY),
      });
      // Contacted inside, responds after `to`: counts as contacted only.
      const slow = lead();
      events.push(...walk(slow, TO - HOUR, ["contacted"]));
      events.push({
        lead_id: slow,
        event_type: "status_changed",
        event_data: { from: "contacted", to: "responded" },
        source: "test",
        time: new Date(TO + HOUR),
      });
      // Opted out: a status change off the pipeline is not a stage.
      events.push(...walk(lead(), FROM + DAY, ["contacted", "not_interested"]));
      await record(sql, events);

      const f = await funnel(sql, { from: new Date(FROM), to: new Date(TO) });
      assert.deepEqual(f.stages.map((s) => [s.stage, s.leads]), [
        ["contacted", 12],
        ["responded", 6],
        ["meeting_scheduled", 3],
        ["client", 1],
      ]);
      assert.equal(f.stages[0]!.rate_from_previous, null);
      assert.equal(f.stages[1]!.rate_from_previous, 0.5);
      assert.equal(f.stages[2]!.rate_from_previous, 0.5);
      assert.equal(f.stages[3]!.rate_from_first, 1 / 12);

      const empty = await funnel(sql, {
        from: new Date(TO + 30 * DAY),
        to: new Date(TO + 31 * DAY),
      });
      assert.deepEqual(empty.stages.map((s) => [s.leads, s.rate_from_first]), [
        [0, null],
        [0, null],
        [0, null],
        [0, null],
      ]);
    });

    await t.step("bookings() counts bookings and those cancelled before `to`", async () => {
      const [kept, cancelled, lateCancel, rebooked] = [lead(), lead(), lead(), lead()];
      const ev = (id: string, type: string, at: number): NewLeadEvent => ({
        lead_id: id,
        event_type: type,
        source: "test",
        time: new Date(at),
      });
      await record(sql, [
        ev(kept, "appointment_booked", FROM + HOUR),
        ev(cancelled, "appointment_booked", FROM + 2 * HOUR),
        ev(cancelled, "appointment_cancelled", FROM + 3 * HOUR),
        ev(lateCancel, "appointment_booked", FROM + 4 * HOUR),
        ev(lateCancel, "appointment_cancelled", TO + HOUR),
        // Cancelled, then booked again and kept: one of two bookings cancelled.
        ev(rebooked, "appointment_booked", FROM + 5 * HOUR),
        ev(rebooked, "appointment_cancelled", FROM + 6 * HOUR),
        ev(rebooked, "appointment_booked", FROM + 7 * HOUR),
        // Outside the range.
        ev(kept, "appointment_booked", FROM - DAY),
      ]);
      const b = await bookings(sql, { from: new Date(FROM), to: new Date(TO) });
      assert.deepEqual(
        { booked: b.booked, leads: b.leads, cancelled: b.cancelled, kept: b.kept },
        { booked: 5, leads: 4, cancelled: 2, kept: 3 },
      );
      assert.equal(b.success_rate, 3 / 5);
      const none = await bookings(sql, { from: new Date(TO + DAY), to: new Date(TO + 2 * DAY) });
      assert.equal(none.success_rate, null);
    });

    await t.step(
      "leadMetrics() filters by event type and includes unrefreshed events",
      async () => {
        const id = lead();
        await record(sql, [
          { lead_id: id, event_type: "email_sent", source: "t", time: new Date(FROM) },
          { lead_id: id, event_type: "email_sent", source: "t", time: new Date(FROM + HOUR - 1) },
          { lead_id: lead(), event_type: "email_sent", source: "t", time: new Date(FROM + HOUR) },
        ]);
        const rows = await leadMetrics(sql, {
          from: new Date(FROM),
          to: new Date(FROM + 2 * HOUR),
          bucket: "1h",
          eventType: "email_sent",
        });
        assert.deepEqual(rows, [
          {
            bucket: new Date(FROM).toISOString(),
            event_type: "email_sent",
            event_count: 2,
            unique_leads: 1,
          },
          {
            bucket: new Date(FROM + HOUR).toISOString(),
            event_type: "email_sent",
            event_count: 1,
            unique_leads: 1,
          },
        ]);
      },
    );

    await t.step(
      "leadMetrics() answers UTC ISO buckets and numbers whatever the session's time zone",
      async () => {
        // Postgres builds the answer (bucket text included): a session in
        // another zone must not shift the buckets it prints.
        const name = await currentDatabase(sql);
        await sql.query(`ALTER DATABASE "${name}" SET timezone = 'Asia/Kolkata'`);
        const shifted = db.pool({ database: name, max: 1 });
        try {
          const zone = await shifted.query<{ TimeZone: string }>("SHOW timezone");
          assert.equal(zone.rows[0]!.TimeZone, "Asia/Kolkata");
          const got = await leadMetrics(shifted, {
            from: new Date(FROM),
            to: new Date(FROM + 2 * HOUR),
            bucket: "1h",
            eventType: "email_sent",
          });
          assert.deepEqual(got, [
            {
              bucket: "2031-05-01T00:00:00.000Z",
              event_type: "email_sent",
              event_count: 2,
              unique_leads: 1,
            },
            {
              bucket: "2031-05-01T01:00:00.000Z",
              event_type: "email_sent",
              event_count: 1,
              unique_leads: 1,
            },
          ]);
          assert.deepEqual(
            await leadMetrics(shifted, {
              from: new Date(FROM - 30 * DAY),
              to: new Date(FROM - 29 * DAY),
              bucket: "1d",
            }),
            [],
          );
        } finally {
          await shifted.end();
          await sql.query(`ALTER DATABASE "${name}" RESET timezone`);
        }
      },
    );

    await t.step("the type index holds the funnel's and bookings' types only", async () => {
      const client = await sql.connect();
      try {
        await client.query("BEGIN");
        // Whether the index CAN serve a read, whatever the planner would pick on this tiny table.
        await client.query("SET LOCAL enable_seqscan = off");
        const plan = async (type: string) =>
          (await client.query<{ "QUERY PLAN": string }>(
            `EXPLAIN SELECT count(*) FROM lead_events
              WHERE event_type = '${type}' AND time >= $1 AND time < $2`,
            [new Date(FROM).toISOString(), new Date(TO).toISOString()],
          )).rows.map((r) => r["QUERY PLAN"]).join("\n");
        for (const type of ["status_changed", "appointment_booked", "appointment_cancelled"]) {
          assert.match(await plan(type), /lead_events_type_time_idx/, type);
        }
        // Ingested types (POST /v1/events) are not in it.
        assert.doesNotMatch(await plan("page_view"), /lead_events_type_time_idx/);
      } finally {
        await client.query("ROLLBACK");
        client.release();
      }
    });

    await t.step(
      "leadMetrics() is one statement per read once the pool's tier is known",
      async () => {
        const pool = db.pool({ database: await currentDatabase(sql), max: 1 });
        try {
          const statements: string[] = [];
          const query = pool.query.bind(pool);
          pool.query = ((text: string, values?: unknown[]) => {
            statements.push(text);
            return query(text, values);
          }) as typeof pool.query;
          const o = { from: new Date(FROM), to: new Date(FROM + 2 * HOUR), bucket: "1h" as const };
          const first = await leadMetrics(pool, o);
          assert.equal(statements.length, 2, "the tier, then the read");
          statements.length = 0;
          assert.deepEqual(await leadMetrics(pool, o), first);
          assert.deepEqual(await leadMetrics(pool, { ...o, eventType: "no_such_type" }), []);
          assert.equal(statements.length, 2);
          assert.match(statements[0]!, /^SELECT read_lead_metrics\(/);
          assert.ok(first.length > 0);
        } finally {
          await pool.end();
        }
      },
    );

    await t.step("a new row after `to` in the range's last bucket still counts", async () => {
      await refreshLeadMetrics(sql, { now: TO });
      const o = { from: new Date(FROM), to: new Date(FROM + HOUR), bucket: "1d" as const };
      const before = await leadMetrics(sql, { ...o, eventType: "email_sent" });
      await record(sql, [
        {
          lead_id: lead(),
          event_type: "email_sent",
          source: "t",
          time: new Date(FROM + 20 * HOUR),
        },
      ]);
      const after = await leadMetrics(sql, { ...o, eventType: "email_sent" });
      assert.equal(after[0]!.event_count, before[0]!.event_count + 1);
      assert.equal(after[0]!.unique_leads, before[0]!.unique_leads + 1);
    });

    await t.step("bad ranges are InvalidAnalyticsRangeError (400)", async () => {
      const bad = [
        { from: new Date(TO), to: new Date(FROM), bucket: "1h" as const },
        { from: new Date(FROM), to: new Date(FROM), bucket: "1d" as const },
        { from: new Date("nope"), to: new Date(TO), bucket: "1h" as const },
        { from: new Date(FROM - 367 * DAY), to: new Date(FROM), bucket: "1h" as const },
      ];
      for (const o of bad) {
        await assert.rejects(leadMetrics(sql, o), (e: InvalidAnalyticsRangeError) => {
          assert.equal(e.name, "InvalidAnalyticsRangeError");
          assert.equal(e.status, 400);
          assert.equal(e.code, "invalid-range");
          return true;
        });
      }
      // A year of days is fine.
      assert.ok(checkRange(new Date(FROM - 367 * DAY), new Date(FROM), 3660 * DAY));
      await assert.rejects(
        funnel(sql, { from: new Date(TO), to: new Date(FROM) }),
        InvalidAnalyticsRangeError,
      );
      await assert.rejects(
        bookings(sql, { from: new Date(TO), to: new Date(FROM) }),
        InvalidAnalyticsRangeError,
      );
    });
  },
});
