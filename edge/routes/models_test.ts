import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { ChampionWatcher } from "../../shared/scoring/champion.ts";
import { heuristicScore } from "../../shared/scoring/heuristic.ts";
import { recordRun } from "../../shared/scoring/registry.ts";
import { createApp } from "../app.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown).
const opts = noSanitizers;

Deno.test({
  name: "/v1/models: who may read and change the registry, and what it answers",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const admin = await h.token("u-admin", ["admin"]);
    // A rejected run in the shared database: it changes no champion.
    const { version } = await recordRun(h.deps.sql, {
      population: "replied",
      status: "rejected",
      status_reason: "refused: test",
      task_id: `models-test-${h.run}`,
      params: { n_trees: 100 },
      window_start: null,
      window_end: new Date(),
      row_counts: { total: 3 },
      metrics: null,
      feature_names: ["rating"],
      model: null,
    });

    await t.step("admins, operators and viewers may read; services may not", async () => {
      for (const auth of [admin, h.tokens.operator, h.tokens.viewer]) {
        const list = await h.call("GET", "/v1/models?limit=200", { auth });
        assert.equal(list.status, 200);
        const body = await list.json();
        assert.ok(body.data.some((m: { version: number }) => m.version === version));
      }
      const one = await h.call("GET", `/v1/models/${version}`, { auth: h.tokens.viewer });
      assert.equal(one.status, 200);
      const run = await one.json();
      assert.deepEqual([run.status, run.status_reason, run.row_counts, run.population], [
        "rejected",
        "refused: test",
        { total: 3 },
        "replied",
      ]);
      assert.equal((await h.call("GET", "/v1/models", { auth: h.tokens.minerva })).status, 403);
      assert.equal((await h.call("GET", "/v1/models/999999999", { auth: admin })).status, 404);
      const bad = await h.call("GET", "/v1/models/abc", { auth: admin });
      assert.equal(bad.status, 400);
    });

    await t.step("only admins may retrain, activate or roll back", async () => {
      for (const auth of [h.tokens.operator, h.tokens.viewer, h.tokens.minerva]) {
        for (
          const path of [
            "/v1/models/retrain",
            `/v1/models/${version}/activate`,
            "/v1/models/rollback",
          ]
        ) {
          const res = await h.call("POST", path, {
            auth,
            json: {},
            headers: { "idempotency-key": "k" },
          });
          assert.equal(res.status, 403, path);
        }
      }
    });

    await t.step(
      "POST /v1/models/retrain needs an Idempotency-Key and queues one internal task per key",
      async () => {
        const missing = await h.call("POST", "/v1/models/retrain", { auth: admin, json: {} });
        assert.equal(missing.status, 400);
        const key = { "idempotency-key": `retrain-${h.run}` };
        const first = await h.call("POST", "/v1/models/retrain", {
          auth: admin,
          json: {},
          headers: key,
        });
        assert.equal(first.status, 202);
        const queued = await first.json();
        const again = await h.call("POST", "/v1/models/retrain", {
          auth: admin,
          json: {},
          headers: key,
        });
        assert.equal((await again.json()).task_id, queued.task_id);
        const task = await h.queue.getTask(queued.task_id);
        assert.equal(task?.type, "retrain_lead_model");
        assert.deepEqual(task?.payload, { trigger: "api", actor: "api:u-admin" });
        const other = await h.call("POST", "/v1/models/retrain", {
          auth: admin,
          headers: { "idempotency-key": `retrain-${h.run}-2` },
        });
        assert.notEqual((await other.json()).task_id, queued.task_id);
      },
    );

    await t.step("a rejected model cannot be activated; problems carry stable codes", async () => {
      const res = await h.call("POST", `/v1/models/${version}/activate`, { auth: admin, json: {} });
      assert.equal(res.status, 409);
      assert.equal((await res.json()).code, "model-not-activatable");
      const missing = await h.call("POST", "/v1/models/999999999/activate", {
        auth: admin,
        json: {},
      });
      assert.equal((await missing.json()).code, "model-not-found");
    });
    await h.deps.sql.query("DELETE FROM ml_models WHERE version = $1", [version]);
  },
});

Deno.test({
  name: "leads written through the API are scored, and GET /v1/leads/:id says by what",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    // The shared database has no champion (suites that train use private ones): the heuristic scores.
    await using scorer = new ChampionWatcher({
      sql: h.deps.sql,
      log: h.deps.log,
      intervalMs: 60_000,
    });
    await scorer.start();
    const app = createApp(h.deps, { queue: h.queue, scorer });
    const call = (method: string, path: string, json?: unknown) =>
      app.request(path, {
        method,
        headers: { authorization: h.tokens.operator, "content-type": "application/json" },
        body: json === undefined ? undefined : JSON.stringify(json),
      });
    const city = `Scoretown-${h.run}`;
    const fields = {
      rating: 4.7,
      reviews: 80,
      has_website: false,
      phone_valid: true,
      email_confidence_score: 0.9,
    };
    const created = await call("POST", "/v1/leads", { name: "Scored Plumbing", city, ...fields });
    assert.equal(created.status, 201);
    const lead = await created.json();
    const expected = heuristicScore({ ...fields });
    assert.equal(lead.lead_score, expected);
    const manual = await (await call("POST", "/v1/leads", { name: "Manual", city, lead_score: 12 }))
      .json();
    assert.equal(manual.lead_score, 12);
    try {
      const detail = await (await call("GET", `/v1/leads/${lead.id}`)).json();
      assert.deepEqual(detail.score_details, {
        source: "heuristic",
        model_version: null,
        model_population: null,
        top_factors: [],
      });
      const manualDetail = await (await call("GET", `/v1/leads/${manual.id}`)).json();
      assert.equal(manualDetail.score_details.source, "manual");
      const page = await (await call("GET", `/v1/leads?city=${city}&min_score=${expected}`)).json();
      assert.deepEqual(page.data.map((l: { id: string }) => l.id), [lead.id]);
    } finally {
      await h.deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[])", [[
        lead.id,
        manual.id,
      ]]);
      await h.deps.sql.query("DELETE FROM businesses WHERE id = ANY($1::uuid[])", [[
        lead.id,
        manual.id,
      ]]);
    }
  },
});
