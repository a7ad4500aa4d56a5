import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { type FeatureSource, populationOf } from "../../shared/scoring/features.ts";
import { featureColumns } from "../../shared/scoring/scores.ts";
import { trainedChampions } from "../../testing/scoring.ts";
import { createApp } from "../app.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown).
const opts = noSanitizers;

Deno.test({
  name: "PATCH, transitions and reopen rescore the lead with the champion in their transaction",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // A frozen clock: the expected score is computed at the write's `now`.
    const NOW = Date.now();
    const h = await routeHarness(stack, { now: () => NOW });
    // Real models with versions no registry row has: the shared database
    // must never get a champion (suites that activate use private ones).
    const version = 900_000 + Math.floor(Math.random() * 90_000);
    const { champions, scorer } = trainedChampions(version, NOW);
    const app = createApp(h.deps, { queue: h.queue, scorer });
    const admin = await h.token("u-admin", ["admin"]);
    const call = async (method: string, path: string, json: unknown, auth = h.tokens.operator) => {
      const res = await app.request(path, {
        method,
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify(json),
      });
      assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
      return await res.json();
    };
    type Stored = FeatureSource & {
      lead_score: number | null;
      lead_score_model: number | null;
      lead_score_source: string | null;
    };
    const stored = async (id: string) =>
      (await h.deps.sql.query<Stored>(
        `SELECT lead_score, lead_score_model, lead_score_source, ${featureColumns()}
           FROM businesses WHERE id = $1`,
        [id],
      )).rows[0]!;
    /** The stored score is the champion's score of the stored features, at the write's time. */
    const assertScoredByModel = async (id: string, returned?: number) => {
      const row = await stored(id);
      const expected = scorer.score(row, NOW);
      assert.equal(row.lead_score_source, "model");
      // The champion of the lead's population as it is after the write.
      assert.equal(row.lead_score_model, champions[populationOf(row)].version);
      assert.equal(row.lead_score, expected.lead_score);
      if (returned !== undefined) assert.equal(returned, expected.lead_score);
      return row;
    };
    /** Marks the stored score stale, so a rescore is visible whatever its value. */
    const makeStale = (id: string) =>
      h.deps.sql.query(
        `UPDATE businesses SET lead_score = 0.1, lead_score_model = NULL, lead_score_source = NULL
          WHERE id = $1`,
        [id],
      );
    try {
      const lead = await h.lead({ name: "Rescore Roofing" });
      assert.equal((await stored(lead.id)).lead_score_source, null, "written without a scorer");

      await t.step("PATCH of a feature rescores with the pre-reply champion", async () => {
        const body = await call("PATCH", `/v1/leads/${lead.id}`, {
          rating: 4.8,
          reviews: 140,
          has_website: false,
          phone_valid: true,
          email_confidence_score: 0.9,
        });
        const row = await assertScoredByModel(lead.id, body.lead_score);
        assert.equal(row.lead_score_model, champions.pre_reply.version);
      });

      await t.step("a reply recorded by PATCH (response time) rescores", async () => {
        const before = (await stored(lead.id)).lead_score;
        const body = await call("PATCH", `/v1/leads/${lead.id}`, { response_time_hours: 2 });
        const row = await assertScoredByModel(lead.id, body.lead_score);
        assert.equal(row.response_time_hours, 2);
        assert.equal(row.lead_score_model, champions.replied.version, "the replied model now");
        assert.notEqual(row.lead_score, before, "the reply moved the score");
      });

      await t.step("a PATCH that sets lead_score keeps it as manual", async () => {
        await call("PATCH", `/v1/leads/${lead.id}`, { lead_score: 42 });
        const row = await stored(lead.id);
        assert.deepEqual(
          [row.lead_score, row.lead_score_source, row.lead_score_model],
          [42, "manual", null],
        );
      });

      await t.step("a later feature change hands the lead back to the champion", async () => {
        await call("PATCH", `/v1/leads/${lead.id}`, { reviews: 150 });
        await assertScoredByModel(lead.id);
      });

      await t.step("POST /v1/leads/:id/transitions rescores", async () => {
        await makeStale(lead.id);
        const body = await call("POST", `/v1/leads/${lead.id}/transitions`, { to: "contacted" });
        assert.equal(body.changed, true);
        await assertScoredByModel(lead.id, body.lead.lead_score);
      });

      await t.step("reopening a not_interested lead rescores", async () => {
        await call("POST", `/v1/leads/${lead.id}/transitions`, { to: "not_interested" });
        await makeStale(lead.id);
        const body = await call(
          "POST",
          `/v1/admin/leads/${lead.id}/reopen`,
          { reason: "called back" },
          admin,
        );
        assert.equal(body.outreach_status, "contacted");
        await assertScoredByModel(lead.id, body.lead_score);
      });

      await t.step(
        "a transition to the current status changes nothing, score included",
        async () => {
          await makeStale(lead.id);
          const body = await call("POST", `/v1/leads/${lead.id}/transitions`, { to: "contacted" });
          assert.equal(body.changed, false);
          const row = await stored(lead.id);
          assert.deepEqual([row.lead_score, row.lead_score_model], [0.1, null]);
        },
      );
    } finally {
      await h.cleanup();
    }
  },
});
