import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import type { TaskContext } from "../runner.ts";
import { scrapeLeadsHandler } from "./scrape_leads.ts";
import { scoreWith } from "../../shared/scoring/champion.ts";
import { heuristicScore } from "../../shared/scoring/heuristic.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";
import { taskContext } from "../../testing/tasks.ts";

/** The handler for file imports (no Places key) and a task context for `taskId`. */
function fileImporter(deps: TaskContext["deps"]) {
  const handler = scrapeLeadsHandler({
    places: { apiKey: null, baseUrl: "http://127.0.0.1:9", qps: 5 },
    defaultPhoneRegion: "US",
    // What a worker's ChampionWatcher does while there is no champion.
    scorer: { score: (lead, now) => scoreWith(null, lead, now) },
  });
  const ctx = (taskId: string): TaskContext => taskContext(deps, taskId);
  return { handler, ctx };
}

// The Neon Pool keeps WebSocket ops alive between queries (docs/reference/neon-local.md §5).
const opts = noSanitizers;

Deno.test({
  name: "scrape_leads imports a CSV with good and bad rows, reruns without duplicates",
  ...opts,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const city = `Scrapeton-${run}`;
  const { handler, ctx } = fileImporter(deps);
  const csv = [
    "name,city,category,rating,reviews,phone,email,external_id",
    `Harbor Fish ${run},${city},seafood,4.5,120,(218) 555-0142,info@harbor.example,hf-${run}`,
    `Bad Rating ${run},${city},bakery,9,3,,,br-${run}`,
    `"Quoted, Name ${run}",${city},salon,4.1,8,,not-an-email,qn-${run}`,
    `Joe's Pizza ${run},${city},pizza,3.9,40,218-555-0199,,jp-${run}`,
  ].join("\r\n");
  const taskA = `scrape-a-${run}`;
  try {
    await t.step("good rows are imported, bad rows reported with line and reason", async () => {
      const res = await handler(
        { provider: "file", format: "csv", content: csv, filename: "leads.csv" },
        ctx(taskA),
      );
      assert.equal(res.inserted, 2);
      assert.deepEqual(res.rejections.map((r) => r.line), [3, 4]);
      assert.match(res.rejections[0]!.reason, /rating/);
      assert.match(res.rejections[1]!.reason, /email/);
      const { rows } = await deps.sql.query(
        "SELECT status, inserted, rejected, rejections FROM scrape_runs WHERE task_id = $1",
        [taskA],
      );
      assert.equal(rows.length, 1);
      assert.deepEqual([rows[0].status, rows[0].inserted, rows[0].rejected], ["succeeded", 2, 2]);
      const leads = await deps.sql.query(
        "SELECT id, phone, phone_valid FROM businesses WHERE city = $1 ORDER BY name",
        [city],
      );
      assert.equal(leads.rowCount, 2);
      assert.ok(leads.rows.every((l) => /^\+1218555\d{4}$/.test(l.phone)));
      const events = await deps.sql.query(
        "SELECT count(*)::int AS n FROM lead_events WHERE lead_id = ANY($1) AND event_type = 'lead_created'",
        [leads.rows.map((l) => l.id)],
      );
      assert.equal(events.rows[0].n, 2);
      // Imported leads are scored as they are written.
      const scored = await deps.sql.query(
        `SELECT lead_score, lead_score_source, rating::float8 AS rating, reviews, has_website,
           phone_valid, email_confidence_score FROM businesses WHERE city = $1`,
        [city],
      );
      for (const row of scored.rows) {
        assert.equal(row.lead_score_source, "heuristic");
        assert.equal(row.lead_score, heuristicScore(row));
      }
    });

    await t.step(
      "the same task run again (retry) and the same file again add no lead",
      async () => {
        const again = await handler(
          { provider: "file", format: "csv", content: csv },
          ctx(taskA),
        );
        assert.deepEqual([again.inserted, again.updated, again.unchanged], [0, 0, 2]);
        const other = await handler(
          { provider: "file", format: "csv", content: csv },
          ctx(`scrape-b-${run}`),
        );
        assert.equal(other.inserted, 0);
        const { rows } = await deps.sql.query(
          "SELECT count(*)::int AS n FROM businesses WHERE city = $1",
          [city],
        );
        assert.equal(rows[0].n, 2);
        const runs = await deps.sql.query(
          "SELECT count(*)::int AS n FROM scrape_runs WHERE task_id = $1",
          [taskA],
        );
        assert.equal(runs.rows[0].n, 1, "one run row per task");
      },
    );

    await t.step("a file without a header is permanent; places without a key too", async () => {
      await assert.rejects(
        handler({ provider: "file", format: "csv", content: "" }, ctx(`scrape-c-${run}`)),
        (err: Error) => err.name === "PermanentTaskError",
      );
      await assert.rejects(
        handler({ provider: "places", query: "plumber", max_pages: 1 }, ctx(`scrape-d-${run}`)),
        (err: Error) => err.name === "PermanentTaskError" && /PLACES_API_KEY/.test(err.message),
      );
    });
  } finally {
    await deps.sql.query(
      "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
      [city],
    );
    await deps.sql.query("DELETE FROM businesses WHERE city = $1", [city]);
    await deps.sql.query("DELETE FROM scrape_runs WHERE task_id LIKE $1", [`scrape-%-${run}`]);
  }
});

Deno.test({
  name:
    "scrape_leads: one NUL character rejects its row with a reason, the rest of the file imports",
  ...opts,
}, async () => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const city = `Nulton-${run}`;
  const { handler, ctx } = fileImporter(deps);
  try {
    const csv = [
      "name,city,category,external_id",
      `Good One ${run},${city},cafe,g1-${run}`,
      `Bad\u0000Name ${run},${city},cafe,b1-${run}`,
      `Good Two ${run},${city},ca\u0000fe,b2-${run}`,
      `Good Three ${run},${city},bar,g3-${run}`,
    ].join("\n");
    const res = await handler(
      { provider: "file", format: "csv", content: csv },
      ctx(`nul-csv-${run}`),
    );
    assert.equal(res.inserted, 2);
    assert.deepEqual(res.rejections.map((r) => r.line), [3, 4]);
    for (const r of res.rejections) assert.match(r.reason, /NUL/);

    const json = JSON.stringify([
      { name: `Json Good ${run}`, city, external_id: `jg-${run}` },
      { name: `Json Bad ${run}`, city: `${city}\u0000`, external_id: `jb-${run}` },
    ]);
    const fromJson = await handler(
      { provider: "file", format: "json", content: json },
      ctx(`nul-json-${run}`),
    );
    assert.equal(fromJson.inserted, 1);
    assert.deepEqual(fromJson.rejections.map((r) => r.line), [2]);
  } finally {
    await deps.sql.query(
      "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
      [city],
    );
    await deps.sql.query("DELETE FROM businesses WHERE city = $1", [city]);
    await deps.sql.query("DELETE FROM scrape_runs WHERE task_id LIKE $1", [`nul-%-${run}`]);
  }
});
