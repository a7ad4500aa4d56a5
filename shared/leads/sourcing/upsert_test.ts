import assert from "node:assert/strict";
import { useTestStack } from "../../../testing/stack.ts";
import { parseLeadCsv } from "./csv.ts";
import type { LeadRecord } from "./record.ts";
import { finishScrapeRun, startScrapeRun, upsertLeads } from "./upsert.ts";
import { noSanitizers } from "../../../testing/sanitizers.ts";

// The stack holds a Neon Pool, whose WebSocket ops outlive each test and
// which reports idle errors after end() asynchronously (docs/reference/neon-local.md §5).
const opts = noSanitizers;

function leads(source: string, n: number, change = 0): LeadRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    source,
    external_id: `ext-${i}`,
    name: `Business ${i}${change ? " (renamed)" : ""}`,
    category: "Plumber",
    city: i % 2 ? "Duluth" : null,
    rating: i % 3 ? 4.5 - change / 10 : null,
    reviews: i + change,
    has_website: i % 4 === 0,
    website: null,
    phone: `+1218555${String(i % 10_000).padStart(4, "0")}`,
    phone_valid: true,
    email: change ? null : `owner${i}@example.com`,
  }));
}

Deno.test({
  name: "upsertLeads()",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const source = `test-${crypto.randomUUID()}`;
    const count = async () =>
      Number(
        (await sql.query<{ n: string }>(
          "SELECT count(*) AS n FROM businesses WHERE source = $1",
          [source],
        )).rows[0]!.n,
      );
    const n = 1203; // three chunks of 500

    try {
      await t.step("inserts new leads in chunks", async () => {
        const result = await upsertLeads(sql, leads(source, n), { chunkSize: 500 });
        const { insertedIds, updatedIds, ...counts } = result;
        assert.deepEqual(updatedIds, []);
        assert.deepEqual(counts, { inserted: n, updated: 0, unchanged: 0, duplicates: 0 });
        assert.equal(new Set(insertedIds).size, n, "one id per new lead");
        assert.equal(await count(), n);
        const { rows } = await sql.query(
          `SELECT name, city, rating::float8 AS rating, reviews, has_website, phone, phone_valid,
                  email, outreach_status
             FROM businesses WHERE source = $1 AND external_id = 'ext-5'`,
          [source],
        );
        assert.deepEqual(rows[0], {
          name: "Business 5",
          city: "Duluth",
          rating: 4.5,
          reviews: 5,
          has_website: false,
          phone: "+12185550005",
          phone_valid: true,
          email: "owner5@example.com",
          outreach_status: "new",
        });
      });

      await t.step("an identical rerun writes nothing", async () => {
        const before = await sql.query(
          "SELECT max(updated_at) AS t FROM businesses WHERE source = $1",
          [
            source,
          ],
        );
        const result = await upsertLeads(sql, leads(source, n));
        assert.deepEqual({ ...result, insertedIds: undefined }, {
          inserted: 0,
          updated: 0,
          unchanged: n,
          duplicates: 0,
          insertedIds: undefined,
          updatedIds: [],
        });
        assert.deepEqual(result.insertedIds, []);
        const after = await sql.query(
          "SELECT max(updated_at) AS t FROM businesses WHERE source = $1",
          [
            source,
          ],
        );
        assert.deepEqual(after.rows, before.rows, "updated_at not bumped");
      });

      await t.step(
        "a rerun with changed fields updates every lead and keeps outreach state",
        async () => {
          await sql.query(
            `UPDATE businesses SET outreach_status = 'contacted', lead_score = 80
            WHERE source = $1 AND external_id IN ('ext-0', 'ext-1')`,
            [source],
          );
          const { updatedIds, ...result } = await upsertLeads(sql, leads(source, n, 1));
          assert.deepEqual(result, {
            inserted: 0,
            updated: n,
            unchanged: 0,
            duplicates: 0,
            insertedIds: [],
          });
          assert.equal(new Set(updatedIds).size, n, "one id per updated lead");
          assert.equal(await count(), n, "no duplicates");
          const { rows } = await sql.query(
            `SELECT external_id, name, reviews, outreach_status, lead_score, email
             FROM businesses WHERE source = $1 AND external_id IN ('ext-0', 'ext-1')
            ORDER BY external_id`,
            [source],
          );
          assert.deepEqual(rows, [
            {
              external_id: "ext-0",
              name: "Business 0 (renamed)",
              reviews: 1,
              outreach_status: "contacted",
              lead_score: 80,
              email: "owner0@example.com", // the source had none: the known address stays
            },
            {
              external_id: "ext-1",
              name: "Business 1 (renamed)",
              reviews: 2,
              outreach_status: "contacted",
              lead_score: 80,
              email: "owner1@example.com",
            },
          ]);
        },
      );

      await t.step("repeated keys in one call collapse to the last record", async () => {
        const [a] = leads(source, 1, 2);
        const result = await upsertLeads(sql, [
          { ...a!, name: "first" },
          { ...a!, name: "last" },
        ]);
        assert.deepEqual({ ...result, updatedIds: result.updatedIds.length }, {
          inserted: 0,
          updated: 1,
          unchanged: 0,
          duplicates: 1,
          insertedIds: [],
          updatedIds: 1,
        });
        const { rows } = await sql.query(
          "SELECT name FROM businesses WHERE source = $1 AND external_id = 'ext-0'",
          [source],
        );
        assert.deepEqual(rows, [{ name: "last" }]);
        assert.deepEqual(await upsertLeads(sql, []), {
          inserted: 0,
          updated: 0,
          unchanged: 0,
          duplicates: 0,
          insertedIds: [],
          updatedIds: [],
        });
      });

      await t.step("re-importing a CSV without ids does not duplicate its leads", async () => {
        const csvSource = `${source}-csv`;
        const csv = "name,city,phone\nJoe's Pizza,Duluth,(218) 555-0142\nHarbor Fish,Duluth,\n";
        const first = await parseLeadCsv(csv, { source: csvSource, defaultRegion: "US" });
        assert.equal((await upsertLeads(sql, first.records)).inserted, 2);
        const again = await parseLeadCsv(csv.replace("Joe's Pizza", "JOES PIZZA"), {
          source: csvSource,
          defaultRegion: "US",
        });
        const { updatedIds, ...counts } = await upsertLeads(sql, again.records);
        assert.deepEqual(counts, {
          inserted: 0,
          updated: 1,
          unchanged: 1,
          duplicates: 0,
          insertedIds: [],
        });
        assert.equal(updatedIds.length, 1);
        const { rows } = await sql.query(
          "SELECT count(*)::int AS n FROM businesses WHERE source = $1",
          [csvSource],
        );
        assert.deepEqual(rows, [{ n: 2 }]);
        await sql.query("DELETE FROM businesses WHERE source = $1", [csvSource]);
      });
    } finally {
      await sql.query("DELETE FROM businesses WHERE source = $1", [source]);
    }
  },
});

Deno.test({
  name: "startScrapeRun() and finishScrapeRun()",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    const taskId = `task-${crypto.randomUUID()}`;
    const rows = async () =>
      (await sql.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM scrape_runs WHERE task_id = $1",
        [taskId],
      )).rows[0]!.n;

    await t.step("starting twice for one task gives one row", async () => {
      const a = await startScrapeRun(sql, {
        taskId,
        provider: "places",
        query: "plumbers",
        location: "Duluth, MN",
      });
      const b = await startScrapeRun(sql, {
        taskId,
        provider: "places",
        query: "plumbers",
        location: "Duluth, MN",
      });
      assert.equal(b.id, a.id);
      assert.equal(b.status, "running");
      assert.equal(b.query, "plumbers");
      assert.equal(await rows(), 1);
    });

    await t.step("finishing records the outcome; a retry resets the row to running", async () => {
      const run = await startScrapeRun(sql, { taskId, provider: "places" });
      const rejections = Array.from({ length: 5 }, (_, i) => ({ line: i + 2, reason: "bad" }));
      const done = await finishScrapeRun(sql, run.id, {
        status: "failed",
        inserted: 3,
        updated: 4,
        rejected: 5,
        rejections,
        error: "Places API failed with 500",
        maxRejections: 2,
      });
      assert.ok(done);
      assert.equal(done.status, "failed");
      assert.deepEqual([done.inserted, done.updated, done.rejected], [3, 4, 5]);
      assert.deepEqual(done.rejections, rejections.slice(0, 2));
      assert.equal(done.error, "Places API failed with 500");
      assert.ok(done.finished_at instanceof Date);

      const retried = await startScrapeRun(sql, { taskId, provider: "places" });
      assert.equal(retried.id, run.id);
      assert.equal(retried.status, "running");
      assert.deepEqual([retried.inserted, retried.rejected, retried.error], [0, 0, null]);
      assert.deepEqual(retried.rejections, []);
      assert.equal(retried.finished_at, null);
      assert.equal(retried.started_at.getTime(), run.started_at.getTime());
      assert.equal(await rows(), 1);

      const ok = await finishScrapeRun(sql, run.id, {
        status: "succeeded",
        inserted: 10,
        updated: 0,
        rejected: 0,
        rejections: [],
      });
      assert.equal(ok?.status, "succeeded");
      assert.equal(ok?.error, null);
    });

    await t.step("runs without a task get a row each; an unknown id finishes nothing", async () => {
      const a = await startScrapeRun(sql, { taskId: null, provider: "csv" });
      const b = await startScrapeRun(sql, { taskId: null, provider: "csv" });
      assert.notEqual(a.id, b.id);
      assert.equal(
        await finishScrapeRun(sql, crypto.randomUUID(), {
          status: "succeeded",
          inserted: 0,
          updated: 0,
          rejected: 0,
          rejections: [],
        }),
        null,
      );
      await sql.query("DELETE FROM scrape_runs WHERE id = ANY($1::uuid[])", [[a.id, b.id]]);
    });
    await sql.query("DELETE FROM scrape_runs WHERE task_id = $1", [taskId]);
  },
});
