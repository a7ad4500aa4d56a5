import assert from "node:assert/strict";
import fc from "fast-check";
import type { Pool } from "@neondatabase/serverless";
import { startTestDatabase } from "../../testing/database.ts";
import { recordLeadEvents } from "../leads/events.ts";
import { createLead } from "../leads/repository.ts";
import { createMetrics, renderMetrics } from "../metrics/metrics.ts";
import { eventSchema, ingestEvents, MAX_EVENT_DATA_BYTES, plainValidEvent } from "./ingest.ts";
import { leadMetrics } from "./queries.ts";
import { bucketStart } from "./tier.ts";
import { DAY, directMetrics, HOUR, migratedDatabase } from "../../testing/analytics.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

const NOW = Date.parse("2031-06-15T12:00:00Z");
const iso = (ms: number) => new Date(ms).toISOString();
const uuid = () => crypto.randomUUID();

async function newLead(sql: Pool, name: string): Promise<string> {
  return (await createLead(sql, { name, source: "api" }, "test")).id;
}

/** The pool with its `query` calls counted. */
function counting(sql: Pool): { sql: Pool; count: () => number } {
  let n = 0;
  const wrapped = new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop !== "query") return Reflect.get(target, prop, receiver);
      return (...args: unknown[]) => {
        n++;
        return (target.query as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
  return { sql: wrapped, count: () => n };
}

async function rowsOf(sql: Pool, ids: string[]) {
  const { rows } = await sql.query<
    { id: string; time: Date; event_type: string; source: string; event_data: unknown }
  >(
    "SELECT id, time, event_type, source, event_data FROM lead_events WHERE id = ANY($1::uuid[]) ORDER BY time",
    [ids],
  );
  return rows;
}

Deno.test({
  name: "ingestEvents() on plain Postgres",
  ...noSanitizers,
  async fn(t) {
    await using db = await startTestDatabase();
    const pool = await migratedDatabase(db);
    const lead = await newLead(pool, "Ingest Inn");
    const other = await newLead(pool, "Other Oven");

    await t.step(
      "a mixed batch: stored, duplicates in the batch, every rejection reason",
      async () => {
        const ids = Array.from({ length: 10 }, uuid);
        const good = {
          id: ids[0],
          time: iso(NOW - HOUR),
          lead_id: lead,
          event_type: "email_opened",
        };
        const batch: unknown[] = [
          good,
          { ...good, id: ids[1], lead_id: uuid() },
          { ...good, id: ids[2], event_type: "email_exploded" },
          { ...good, id: ids[3], time: iso(NOW + HOUR) },
          { ...good, lead_id: other, time: iso(NOW - 2 * HOUR) }, // id of 0: a duplicate
          {
            id: ids[5]!.toUpperCase(),
            time: "2031-06-15T13:30:00+02:00",
            lead_id: other.toUpperCase(),
            event_type: "page_view",
            event_data: { path: "/preview", ms: 1200 },
            source: "site",
          },
          42,
          { id: "nope", time: "yesterday", lead_id: uuid(), event_type: "Bad Type", extra: 1 },
          { ...good, id: ids[8], time: iso(NOW + 4 * 60_000), event_type: "email_replied" },
          { ...good, id: ids[9], event_type: "status_changed" },
        ];
        const { sql, count } = counting(pool);
        const metrics = createMetrics();
        const result = await ingestEvents(sql, batch, {
          now: NOW,
          source: "api:sa:minerva",
          metrics,
        });
        assert.equal(count(), 2, "one lead query, one insert");
        assert.deepEqual(result.stored, [
          { index: 0, id: ids[0] },
          { index: 5, id: ids[5] },
          { index: 8, id: ids[8] },
        ]);
        assert.deepEqual(result.duplicates, [{ index: 4, id: ids[0] }]);
        assert.deepEqual(result.rejected.map((r) => [r.index, r.id]), [
          [1, ids[1]],
          [2, ids[2]],
          [3, ids[3]],
          [6, undefined],
          [7, undefined],
          [9, ids[9]],
        ]);
        const reasons = Object.fromEntries(result.rejected.map((r) => [r.index, r.reasons]));
        assert.deepEqual(reasons[1], ["lead_id: no lead has this id"]);
        assert.deepEqual(reasons[2], ['event_type: unknown event type "email_exploded"']);
        assert.deepEqual(reasons[3], ["time: must not be more than 300 s in the future"]);
        assert.match(
          reasons[9]![0]!,
          /^event_type: "status_changed" is recorded by the platform only/,
        );
        assert.equal(reasons[6]!.length, 1);
        assert.equal(reasons[6]![0]!, "event: must be an object (got number)");
        const seven = reasons[7]!.join("\n");
        for (const field of ["id", "time", "event_type", "extra", "lead_id"]) {
          assert.match(seven, new RegExp(`^${field}: `, "m"), seven);
        }
        assert.match(seven, /^extra: unknown field$/m);

        const rows = await rowsOf(pool, ids);
        assert.deepEqual(rows.map((r) => [r.id, r.time.toISOString(), r.event_type, r.source]), [
          [ids[0], iso(NOW - HOUR), "email_opened", "api:sa:minerva"],
          [ids[5], "2031-06-15T11:30:00.000Z", "page_view", "api:sa:minerva:site"],
          [ids[8], iso(NOW + 4 * 60_000), "email_replied", "api:sa:minerva"],
        ]);
        assert.deepEqual(rows[1]!.event_data, { path: "/preview", ms: 1200 });

        // The same batch again: everything stored is now a duplicate, rejections stay.
        const again = await ingestEvents(pool, batch, { now: NOW, metrics });
        assert.deepEqual(again.stored, []);
        assert.deepEqual(again.duplicates.map((d) => d.index), [0, 4, 5, 8]);
        assert.deepEqual(again.rejected.map((r) => r.index), [1, 2, 3, 6, 7, 9]);
        assert.equal((await rowsOf(pool, ids)).length, 3);

        // Both batches' rows in the registry's output, by outcome.
        const text = await renderMetrics(metrics);
        for (
          const line of [
            'analytics_ingest_rows_total{outcome="stored"} 3',
            'analytics_ingest_rows_total{outcome="duplicate"} 5',
            'analytics_ingest_rows_total{outcome="rejected"} 12',
          ]
        ) assert.ok(text.split("\n").includes(line), `${line} missing from:\n${text}`);
      },
    );

    await t.step(
      "an id stored with another time is a duplicate within the window only",
      async () => {
        const id = uuid();
        const at = NOW - DAY;
        const e = (time: number) => ({
          id,
          time: iso(time),
          lead_id: lead,
          event_type: "page_view",
        });
        assert.equal((await ingestEvents(pool, [e(at)], { now: NOW })).stored.length, 1);
        // A client that stamps its retry anew: caught within the window (default 1 day).
        const retry = await ingestEvents(pool, [e(at + 3 * HOUR), e(at - 20 * HOUR)], { now: NOW });
        assert.deepEqual(retry.duplicates, [{ index: 0, id }, { index: 1, id }]);
        assert.deepEqual(retry.stored, []);
        // The documented limit: outside the window the id is stored a second time.
        const far = await ingestEvents(pool, [e(at + 2 * HOUR)], {
          now: NOW,
          duplicateWindowMs: HOUR,
        });
        assert.deepEqual(far.stored, [{ index: 0, id }]);
        assert.equal((await rowsOf(pool, [id])).length, 2);
      },
    );

    await t.step("concurrent batches with the same events store each once", async () => {
      const batch = Array.from({ length: 200 }, (_, i) => ({
        id: uuid(),
        time: iso(NOW - 3 * DAY + i * 1000),
        lead_id: i % 2 ? lead : other,
        event_type: "email_clicked",
      }));
      const results = await Promise.all(
        [0, 1, 2].map(() => ingestEvents(pool, batch, { now: NOW })),
      );
      assert.equal(results.reduce((n, r) => n + r.stored.length, 0), 200);
      assert.equal(results.reduce((n, r) => n + r.duplicates.length, 0), 400);
      assert.equal((await rowsOf(pool, batch.map((e) => e.id))).length, 200);
    });

    await t.step("event_data: capped, and text Postgres cannot store is refused", async () => {
      const base = { time: iso(NOW - HOUR), lead_id: lead, event_type: "form_submitted" };
      const cases: [unknown, RegExp | null][] = [
        [
          { note: "x".repeat(MAX_EVENT_DATA_BYTES) },
          /^event_data: is \d+ bytes as JSON; at most 8192$/,
        ],
        [{ note: "a\0b" }, /^event_data: must not contain NUL characters$/],
        [{ nested: { "\ud800": 1 } }, /^event_data: must not contain unpaired surrogates$/],
        [[1, 2], /^event_data: /],
        [{ big: 1n }, /^event_data: /],
        // JSON.parse makes "__proto__" an own key, as a request body would.
        [JSON.parse('{"__proto__":{"admin":true},"ok":"😀"}'), null],
      ];
      const events = cases.map(([event_data]) => ({ ...base, id: uuid(), event_data }));
      const result = await ingestEvents(pool, [
        ...events,
        { ...base, id: uuid(), source: "x".repeat(101) },
        { ...base, id: uuid(), source: "a\0" },
        { ...base, id: uuid(), source: "minerva:webhook" },
      ], { now: NOW });
      assert.deepEqual(result.stored.map((s) => s.index), [5]);
      for (const [i, [, pattern]] of cases.entries()) {
        if (pattern === null) continue;
        const r = result.rejected.find((x) => x.index === i);
        assert.ok(r, `case ${i} rejected`);
        assert.match(r.reasons.join("\n"), pattern, `case ${i}: ${r.reasons}`);
      }
      assert.deepEqual(result.rejected.map((r) => r.index), [0, 1, 2, 3, 4, 6, 7, 8]);
      assert.match(result.rejected.at(-1)!.reasons.join(), /^source: must not contain ':'/);
      const [row] = await rowsOf(pool, [events[5]!.id]);
      assert.equal(JSON.stringify(row!.event_data), '{"ok":"😀","__proto__":{"admin":true}}');
    });

    await t.step(
      "events before the retained data are refused (tiers 2–3 after retention)",
      async () => {
        const retained = bucketStart(NOW - 90 * DAY, "1d");
        await pool.query("UPDATE lead_metrics_state SET retained_from = $1", [iso(retained)]);
        try {
          const e = (time: number) => ({
            id: uuid(),
            time: iso(time),
            lead_id: lead,
            event_type: "page_view",
          });
          const result = await ingestEvents(pool, [e(retained - 1), e(retained)], { now: NOW });
          assert.deepEqual(result.stored.map((s) => s.index), [1]);
          assert.deepEqual(result.rejected[0]?.reasons, [
            `time: before ${iso(retained)}, where retained events start`,
          ]);
        } finally {
          await pool.query("UPDATE lead_metrics_state SET retained_from = NULL");
        }
      },
    );

    await t.step("nothing to store costs one query; an empty batch none", async () => {
      const { sql, count } = counting(pool);
      assert.deepEqual(await ingestEvents(sql, [], { now: NOW }), {
        stored: [],
        duplicates: [],
        rejected: [],
      });
      assert.equal(count(), 0);
      const r = await ingestEvents(sql, [{ id: uuid() }], { now: NOW });
      assert.equal(r.rejected.length, 1);
      assert.equal(count(), 1);
    });

    await t.step("ingested events are in leadMetrics() at once, without a refresh", async () => {
      const from = new Date(NOW - 10 * DAY);
      const to = new Date(NOW - 9 * DAY);
      const events = Array.from({ length: 300 }, (_, i) => ({
        id: uuid(),
        time: iso(from.getTime() + ((i * 7919) % DAY)),
        lead_id: i % 3 ? lead : other,
        event_type: i % 2 ? "email_delivered" : "call_logged",
      }));
      assert.equal((await ingestEvents(pool, events, { now: NOW })).stored.length, 300);
      for (const bucket of ["1h", "1d"] as const) {
        const got = await leadMetrics(pool, { from, to, bucket });
        assert.deepEqual(got, await directMetrics(pool, { from, to, bucket }));
        assert.equal(got.reduce((n, r) => n + r.event_count, 0), 300);
      }
    });

    await t.step("recordLeadEvents() still generates ids and times", async () => {
      const n = await recordLeadEvents(pool, [
        { lead_id: lead, event_type: "lead_updated", source: "test" },
        { lead_id: lead, event_type: "lead_updated", source: "test" },
      ]);
      assert.equal(n, 2);
      await assert.rejects(
        recordLeadEvents(pool, [{ lead_id: "x", event_type: "lead_updated", source: "t" }]),
        /Cannot record lead event 0: lead_id must be a uuid/,
      );
    });
  },
});

Deno.test("the plain-object fast path accepts only what the event schema accepts, as it is", () => {
  const now = Date.parse("2031-06-15T12:00:00Z");
  const maxFutureMs = 300_000;
  const schema = eventSchema(now, maxFutureMs);
  const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
  // Mostly valid values, so that whole events often are.
  const mix = (valid: unknown[], invalid: unknown[]) =>
    fc.oneof({ arbitrary: pick(...valid), weight: 5 }, { arbitrary: pick(...invalid), weight: 1 });
  const ids = mix([
    "0b0c6a4e-5f1d-4c2b-9a3e-7d8f9a0b1c2d",
    "0B0C6A4E-5F1D-4C2B-9A3E-7D8F9A0B1C2D",
    "00000000-0000-0000-0000-000000000000",
  ], [
    "0b0c6a4e-5f1d-0c2b-9a3e-7d8f9a0b1c2d", // version 0
    "0b0c6a4e5f1d4c2b9a3e7d8f9a0b1c2d",
    "",
    42,
    null,
  ]);
  const field = {
    time: mix([
      "2031-06-15T11:00:00Z",
      "2031-06-15T13:30:00+02:00",
      "2031-06-15T11:00:00.123456Z",
      "2031-06-15T12:04:59Z", // inside the 5 minutes ahead
      "2028-02-29T00:00:00Z",
    ], [
      "2031-06-15T12:05:01Z", // beyond
      "2031-02-29T00:00:00Z", // not a leap year
      "2031-06-15T11:00:00", // no offset
      "2031-06-15 11:00:00Z",
      "2031-06-15T24:00:00Z",
      "yesterday",
      1_800_000_000_000,
    ]),
    event_type: mix(["page_view", "email_replied"], ["status_changed", "Page_View", "nope", 7]),
    event_data: mix([undefined, {}, { path: "/x", n: 1, nested: { a: [1, "b"] } }], [
      { bad: "nul\0" },
      { ["key\0"]: 1 },
      { lone: "\ud800" },
      { big: "x".repeat(MAX_EVENT_DATA_BYTES) },
      { wide: "\u00e9".repeat(3000) }, // 6,000 units, over 8 KiB as UTF-8
      JSON.parse('{"__proto__": {"a": 1}}'),
      [],
      "text",
      null,
      new Date(0),
    ]),
    source: mix([undefined, "site", "x".repeat(100)], ["", "a:b", "x".repeat(101), "n\0", 3]),
  };
  const arbitraryEvent = fc.record({
    id: ids,
    time: field.time,
    lead_id: ids,
    event_type: field.event_type,
    event_data: field.event_data,
    source: field.source,
    extra: mix([undefined], [1]),
  }, { requiredKeys: ["id", "time", "lead_id", "event_type"] }).map((e) => {
    const out: Record<string, unknown> = { ...e };
    if (out.extra === undefined) delete out.extra;
    return out;
  });
  let fast = 0;
  fc.assert(
    fc.property(arbitraryEvent, (raw) => {
      const plain = plainValidEvent(raw, now, maxFutureMs);
      const parsed = schema.safeParse(raw);
      if (plain === null) return;
      fast++;
      assert.ok(
        parsed.success,
        `fast path accepted what the schema refuses: ${JSON.stringify(raw)}`,
      );
      assert.equal(plain, raw);
      for (const [k, v] of Object.entries(parsed.data)) {
        if (k !== "event_data") assert.deepEqual(v, raw[k], k);
      }
    }),
    { numRuns: 3000 },
  );
  assert.ok(fast > 100, `the fast path took only ${fast} events`);
  // The common shape takes the fast path.
  const common = {
    id: "0b0c6a4e-5f1d-4c2b-9a3e-7d8f9a0b1c2d",
    time: "2031-06-15T11:00:00.000Z",
    lead_id: "1b0c6a4e-5f1d-4c2b-9a3e-7d8f9a0b1c2d",
    event_type: "page_view",
    event_data: { campaign: "bench", n: 1 },
  };
  assert.equal(plainValidEvent(common, now, maxFutureMs), common);
  assert.equal(plainValidEvent({ ...common, source: "site" }, now, maxFutureMs)?.source, "site");
});
