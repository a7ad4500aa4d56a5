/**
 * `deno task bench:ml [--sizes 10000,50000] [--score 50000] [--rescore 20000]`:
 * the lead-scoring model's costs, as JSON lines (bench/lib/report.ts).
 *
 * - `train`: trainCandidate() on N labelled demo leads (dev/seed_data.ts):
 *   split, 100 trees of depth 10, calibration, holdout metrics, for each
 *   population (docs/lead-scoring.md §Populations; the pre-reply model
 *   learns from every labelled lead, the replied one from those that
 *   replied). Target: 50,000 in under 60 s.
 * - `score`: leads/s scored in-process with the 10,000-lead pre-reply model, the
 *   probability alone and with the top contributing features (what a write
 *   stores). Target: ≥ 50,000/s.
 * - `rescore`: rows/s of rescoreOpenLeads() end to end (Neon driver →
 *   proxy → PostgreSQL, chunked transactions) over the open pre-reply leads
 *   (most open leads) of a seeded database on a private local stack.
 *   Target: ≥ 5,000/s.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { migrateStack } from "../dev/migrate_stack.ts";
import { seedDatabase } from "../dev/seed.ts";
import { startStack } from "../dev/stack.ts";
import { poolFor } from "../shared/db/pool.ts";
import { activateModel, recordRun } from "../shared/scoring/registry.ts";
import { explainLead, scoreLead, type ScoringModel } from "../shared/scoring/model.ts";
import { rescoreOpenLeads } from "../shared/scoring/scores.ts";
import { seededTrainingRows } from "../testing/scoring.ts";
import { DEFAULT_TRAIN_PARAMS, trainCandidate, type TrainingRow } from "../shared/scoring/train.ts";
import { POPULATIONS } from "../shared/scoring/features.ts";
import { cpuMicros } from "./lib/cpu.ts";
import { round3, runScenario } from "./lib/report.ts";

const NOW = Date.parse("2026-12-01T00:00:00Z");
const BENCH = "ml";

/** At least `n` labelled demo leads (about a quarter of generated leads are labelled). */
function labelled(n: number): TrainingRow[] {
  let count = n * 4;
  for (;;) {
    const rows = seededTrainingRows(count, 1, NOW);
    if (rows.length >= n) return rows.slice(0, n);
    count *= 2;
  }
}

async function main() {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "10000,50000" },
      score: { type: "string", default: "50000" },
      rescore: { type: "string", default: "20000" },
    },
  });
  const sizes = values.sizes.split(",").map(Number);
  let model: ScoringModel | null = null;
  for (const n of sizes) {
    const rows = labelled(n);
    for (const population of POPULATIONS) {
      const params = { ...DEFAULT_TRAIN_PARAMS, population };
      const line = await runScenario(() => {
        const started = performance.now();
        const cpuStart = cpuMicros();
        const out = trainCandidate(rows, params, NOW);
        const seconds = (performance.now() - started) / 1000;
        if (out.kind !== "trained") throw new Error(`training refused: ${out.reason}`);
        if (population === "pre_reply") model ??= out.model;
        return Promise.resolve({
          bench: BENCH,
          scenario: "train",
          n,
          population,
          rows: out.rows.total,
          trees: params.nTrees,
          max_depth: params.maxDepth,
          seconds: round3(seconds),
          cpu_seconds: round3((cpuMicros() - cpuStart) / 1e6),
          target_s: 60,
          holdout_roc_auc: round3(out.metrics.model.roc_auc),
          heuristic_roc_auc: round3(out.metrics.heuristic_roc_auc),
          baseline_log_loss: round3(out.metrics.baseline.log_loss),
          log_loss: round3(out.metrics.model.log_loss),
        });
      });
      console.error(`[ml] trained ${population} on ${n} in ${line.seconds} s`);
    }
  }
  // Assigned inside the scenario callbacks, which the compiler does not follow.
  const trained = model as ScoringModel | null;
  if (!trained) throw new Error("no model trained");

  const scoreN = Number(values.score);
  const leads = labelled(Math.min(scoreN, 20_000));
  for (const factors of [false, true]) {
    await runScenario(() => {
      const started = performance.now();
      const cpuStart = cpuMicros();
      let sum = 0;
      for (let i = 0; i < scoreN; i++) {
        const lead = leads[i % leads.length]!;
        sum += factors
          ? explainLead(trained, lead, NOW).lead_score
          : scoreLead(trained, lead, NOW).lead_score;
      }
      const seconds = (performance.now() - started) / 1000;
      const cpuSeconds = (cpuMicros() - cpuStart) / 1e6;
      return Promise.resolve({
        bench: BENCH,
        scenario: factors ? "score_with_factors" : "score",
        n: scoreN,
        ops_per_s: Math.round(scoreN / seconds),
        // On a shared machine wall time includes waiting for a core: per CPU-second too.
        ops_per_cpu_s: Math.round(scoreN / cpuSeconds),
        target_ops_per_s: 50_000,
        checksum: Math.round(sum),
      });
    });
  }

  const stack = await startStack({ onProgress: (m) => console.error(`[ml] ${m}`) });
  try {
    await migrateStack(stack.settings);
    const sql = poolFor(stack.settings.database, { max: 2, onError: () => {} });
    try {
      await seedDatabase(sql, { seed: 1, leads: Number(values.rescore), now: NOW });
      const { version } = await recordRun(sql, {
        population: "pre_reply",
        status: "candidate",
        status_reason: "bench",
        task_id: null,
        params: {},
        window_start: null,
        window_end: new Date(NOW),
        row_counts: {},
        metrics: null,
        feature_names: trained.features,
        model: trained,
      });
      const done = await activateModel(sql, version, "bench");
      await runScenario(async () => {
        const started = performance.now();
        const result = await rescoreOpenLeads(sql, done.activation_id!, () => NOW, {
          chunkSize: 1000,
        });
        const seconds = (performance.now() - started) / 1000;
        return {
          bench: BENCH,
          scenario: "rescore",
          n: result.rows,
          chunk: 1000,
          ops_per_s: Math.round(result.rows / seconds),
          target_ops_per_s: 5_000,
        };
      });
    } finally {
      await sql.end().catch(() => {});
    }
  } finally {
    await stack.stop();
  }
}

if (import.meta.main) await main();
