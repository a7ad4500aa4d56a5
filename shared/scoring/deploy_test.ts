import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { seedDatabase } from "../../dev/seed.ts";
import { startTestDatabase, type TestDatabase } from "../../testing/database.ts";
import { loadMigrations, migrate, MIGRATIONS_DIR } from "../db/migrate.ts";
import { createLogger } from "../log.ts";
import type { Config } from "../config/mod.ts";
import { scoring } from "../config/scoring.ts";
import { ChampionWatcher } from "./champion.ts";
import { afterSwitch } from "./deploy.ts";
import { ModelNotActivatableError, NoPreviousChampionError } from "./errors.ts";
import type { ModelEvent } from "./notify.ts";
import { runTraining, type TrainingServices } from "./pipeline.ts";
import { activateModel, championVersion, getRun, listRuns, rollbackChampion } from "./registry.ts";
import { leadScoreDetails, rescoreOpenLeads } from "./scores.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The Neon Pool reports idle errors after end() asynchronously: sanitizers off.
const opts = noSanitizers;
const NOW = Date.parse("2026-12-01T00:00:00Z");
const ML: Config["ml"] = {
  windowMs: 90 * 86_400_000,
  settleDays: 14,
  minRows: 100,
  minClassExamples: 10,
  seed: 42,
  // The default gate (shared/config/scoring.ts): the seeded leads' models pass
  // it on their own merit (docs/lead-scoring.md §Results).
  gate: {
    minRocAuc: Number(scoring.variables.ML_GATE_MIN_ROC_AUC.default),
    championTolerance: Number(scoring.variables.ML_GATE_CHAMPION_TOLERANCE.default),
    heuristicMargin: Number(scoring.variables.ML_GATE_HEURISTIC_MARGIN.default),
  },
  threshold: 0.5,
  autoActivate: true,
  championCheckMs: 100,
  rescoreChunk: 100,
  mlflow: null,
};

/** A child process printing JSON lines; `next(pred)` waits for a matching line. */
function child(args: string[]) {
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./testdata/child.ts", import.meta.url).pathname, ...args],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const seen: Record<string, unknown>[] = [];
  async function next(pred: (line: Record<string, unknown>) => boolean) {
    for (;;) {
      const found = seen.find(pred);
      if (found) return found;
      const { value, done } = await lines.read();
      if (done) {
        throw new Error(`child ended before the expected line; saw ${JSON.stringify(seen)}`);
      }
      buffer += value;
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      for (const p of parts) if (p.trim()) seen.push(JSON.parse(p));
    }
  }
  async function kill() {
    try {
      process.kill("SIGKILL");
    } catch { /* already gone */ }
    await lines.cancel().catch(() => {});
    await process.status;
  }
  return { next, kill, status: process.status };
}

Deno.test({
  name: "training, the gate, activation across processes, rescoring and rollback against Postgres",
  ...opts,
  async fn(t) {
    let db: TestDatabase | undefined;
    let sql: Pool | undefined;
    try {
      db = await startTestDatabase();
      const name = await db.createDatabase();
      sql = db.pool({ database: name, max: 4 });
      await migrate(sql, await loadMigrations(MIGRATIONS_DIR));
      await seedDatabase(sql, { seed: 1, leads: 3000, now: NOW });
      const url = new URL(db.server.databaseUrl);
      url.pathname = `/${name}`;
      const childArgs = [url.toString(), db.proxy.wsProxy];
      const pool = sql;

      const events: ModelEvent[] = [];
      const rescores: number[] = [];
      const logs: string[] = [];
      const services: TrainingServices = {
        sql: pool,
        log: createLogger({ level: "info", write: (l) => logs.push(l) }),
        now: () => NOW,
        ml: ML,
        notify: (e) => Promise.resolve(void events.push(e)),
        enqueueRescore: (id) => Promise.resolve(void rescores.push(id)),
        mlflow: null,
      };
      const deploy = { notify: services.notify, enqueueRescore: services.enqueueRescore };

      const watcher = child(["watch", ...childArgs]);
      await watcher.next((l) =>
        l.ready === true && Object.keys(l.versions as Record<string, number>).length === 0
      );

      let first = 0;
      await t.step("training on seeded leads records a champion that passed the gate", async () => {
        const result = await runTraining(services, {
          taskId: "task-1",
          trigger: "test",
          actor: "test",
          population: "pre_reply",
        });
        assert.equal(result.status, "champion", result.reason);
        first = result.version;
        const run = await getRun(pool, first);
        assert.equal(run.status, "champion");
        const metrics = run.metrics as {
          model: { roc_auc: number };
          baseline: { roc_auc: number };
        };
        assert.ok(metrics.model.roc_auc >= ML.gate.minRocAuc);
        assert.equal(run.population, "pre_reply");
        assert.equal(metrics.baseline.roc_auc, 0.5);
        assert.ok(Number(run.row_counts.total) >= 100);
        assert.deepEqual(events.map((e) => e.type), ["model.trained", "model.activated"]);
        assert.equal(rescores.length, 1);
        // A redelivery of the same task records nothing new and activates nothing.
        const again = await runTraining(services, {
          taskId: "task-1",
          trigger: "test",
          actor: "test",
          population: "pre_reply",
        });
        assert.deepEqual([again.version, again.created], [first, false]);
        assert.equal(rescores.length, 1);
      });

      await t.step("another process sees the activation without a restart", async () => {
        await watcher.next((l) => l.population === "pre_reply" && l.version === first);
      });

      await t.step("too little data is refused and recorded with its reason", async () => {
        const result = await runTraining(
          { ...services, ml: { ...ML, minRows: 1_000_000 } },
          { taskId: "task-refused", trigger: "test", actor: "test", population: "pre_reply" },
        );
        assert.equal(result.status, "rejected");
        assert.match(
          result.reason,
          /^refused: \d+ labelled leads, fewer than the minimum 1000000$/,
        );
        await assert.rejects(
          activateModel(pool, result.version, "admin"),
          ModelNotActivatableError,
        );
        assert.equal(await championVersion(pool, "pre_reply"), first);
      });

      await t.step(
        "a kill -9 during rescoring resumes without rescoring a lead twice or skipping one",
        async () => {
          // Counts every write of a lead's score model, per lead (this private database only).
          await pool.query(`CREATE TABLE rescore_writes (lead_id uuid, version integer);
          CREATE FUNCTION count_rescore() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN INSERT INTO rescore_writes VALUES (NEW.id, NEW.lead_score_model); RETURN NEW; END $$;
          CREATE TRIGGER count_rescore AFTER UPDATE OF lead_score_model ON businesses
            FOR EACH ROW EXECUTE FUNCTION count_rescore();`);
          const rescorer = child(["rescore", ...childArgs, String(rescores[0])]);
          await rescorer.next((l) => Number(l.total) >= 20);
          await rescorer.kill();
          const result = await rescoreOpenLeads(pool, rescores[0]!, () => NOW, { chunkSize: 50 });
          assert.equal(result.superseded, false);
          const { rows } = await pool.query<
            { open: string; scored: string; writes: string; most: string; run: string }
          >(
            `SELECT (SELECT count(*) FROM businesses
                    WHERE outreach_status IN ('new', 'contacted', 'responded', 'meeting_scheduled')
                      AND response_time_hours IS NULL) AS open,
                  (SELECT count(*) FROM businesses WHERE lead_score_model = $1 AND lead_score_source = 'model'
                      AND lead_score_factors IS NOT NULL) AS scored,
                  (SELECT count(*) FROM rescore_writes) AS writes,
                  (SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM rescore_writes GROUP BY lead_id) x) AS most,
                  (SELECT rows_done FROM ml_rescore_runs WHERE activation_id = $2) AS run`,
            [first, rescores[0]],
          );
          const r = rows[0]!;
          assert.ok(Number(r.open) > 100);
          assert.equal(r.scored, r.open, "every open pre-reply lead carries the champion's score");
          assert.equal(r.writes, r.open, "each open pre-reply lead was written exactly once");
          assert.equal(r.most, "1");
          assert.equal(r.run, r.open);
          assert.ok(
            result.rows < Number(r.open),
            "the second call resumed instead of starting over",
          );
        },
      );

      let second = 0;
      await t.step(
        "a second champion, then rollback restores the first, also in the other process",
        async () => {
          const result = await runTraining(
            {
              ...services,
              ml: { ...ML, seed: 7, gate: { ...ML.gate, championTolerance: 1 } },
            },
            { taskId: "task-2", trigger: "test", actor: "test", population: "pre_reply" },
          );
          assert.equal(result.status, "champion", result.reason);
          second = result.version;
          await watcher.next((l) => l.population === "pre_reply" && l.version === second);
          assert.equal((await getRun(pool, first)).status, "retired");

          // No population named: the one of the latest switch.
          const back = await rollbackChampion(pool, "admin");
          assert.deepEqual([back.version, back.previous, back.action], [first, second, "rollback"]);
          await afterSwitch(deploy, back, "admin");
          assert.equal(events.at(-1)!.type, "model.rolled_back");
          assert.equal(back.population, "pre_reply");
          assert.equal(await championVersion(pool, "pre_reply"), first);
          await watcher.next((l) => l.population === "pre_reply" && l.version === first);
          // The rollback's rescoring writes the first model's scores again.
          await rescoreOpenLeads(pool, back.activation_id!, () => NOW);
          const { rows } = await pool.query<{ n: string }>(
            "SELECT count(*) AS n FROM businesses WHERE lead_score_model = $1",
            [second],
          );
          assert.equal(rows[0]!.n, "0");
          // Nothing before the first champion: a second rollback has nowhere to go.
          await assert.rejects(
            rollbackChampion(pool, "admin", "pre_reply"),
            NoPreviousChampionError,
          );
          assert.deepEqual((await listRuns(pool)).map((r) => r.status).slice(0, 3), [
            "retired",
            "rejected",
            "champion",
          ]);
        },
      );

      let replied = 0;
      await t.step(
        "a replied champion serves replied leads only, beside the pre-reply champion",
        async () => {
          const result = await runTraining(services, {
            taskId: "task-1",
            trigger: "test",
            actor: "test",
            population: "replied",
          });
          assert.equal(result.status, "champion", result.reason);
          replied = result.version;
          assert.equal((await getRun(pool, replied)).population, "replied");
          await watcher.next((l) => l.population === "replied" && l.version === replied);
          assert.equal(await championVersion(pool, "pre_reply"), first, "its champion stays");
          const activation = rescores.at(-1)!;
          const done = await rescoreOpenLeads(pool, activation, () => NOW);
          const { rows } = await pool.query<{ population: string; version: number; n: string }>(
            `SELECT CASE WHEN response_time_hours IS NULL THEN 'pre_reply' ELSE 'replied' END
                      AS population, lead_score_model AS version, count(*) AS n
               FROM businesses
              WHERE outreach_status IN ('new', 'contacted', 'responded', 'meeting_scheduled')
              GROUP BY 1, 2 ORDER BY 1`,
          );
          assert.deepEqual(
            rows.map((r) => [r.population, r.version]),
            [["pre_reply", first], ["replied", replied]],
          );
          assert.equal(done.total, Number(rows[1]!.n));
          const lead = await pool.query<{ id: string }>(
            "SELECT id FROM businesses WHERE lead_score_model = $1 LIMIT 1",
            [replied],
          );
          const details = await leadScoreDetails(pool, lead.rows[0]!.id);
          assert.deepEqual(
            [details?.source, details?.model_version, details?.model_population],
            ["model", replied, "replied"],
          );
        },
      );

      await t.step(
        "an in-process watcher scores each lead with its population's champion, the heuristic without one",
        async () => {
          await using w = new ChampionWatcher({ sql: pool, log: services.log, intervalMs: 60_000 });
          await w.start();
          assert.deepEqual(w.versions, { pre_reply: first, replied });
          const lead = {
            category: "plumber",
            city: "Austin",
            rating: 4.8,
            reviews: 120,
            has_website: false,
            phone_valid: true,
            email_confidence_score: 0.9,
            response_time_hours: null,
            last_contacted: null,
            created_at: new Date(NOW),
          };
          const scored = w.score(lead, NOW);
          assert.equal(scored.source, "model");
          assert.equal(scored.model_version, first);
          assert.equal(scored.factors.length, 3);
          const answered = w.score({ ...lead, response_time_hours: 3 }, NOW);
          assert.equal(answered.model_version, replied);
          await pool.query("UPDATE ml_models SET status = 'retired' WHERE status = 'champion'");
          await w.check();
          assert.deepEqual(
            [
              w.score(lead, NOW).source,
              w.score(lead, NOW).model_version,
              w.score(lead, NOW).factors,
            ],
            ["heuristic", null, []],
          );
        },
      );
      await watcher.kill();
    } finally {
      await sql?.end().catch(() => {});
      await db?.stop();
    }
  },
});
