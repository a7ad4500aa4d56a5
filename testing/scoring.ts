/**
 * Labelled leads from the seed generator (dev/seed_data.ts) without a
 * database, for the training tests and the benchmark.
 *
 * @module
 */
import { generateLead } from "../dev/seed_data.ts";
import { isLabelled } from "../shared/scoring/labels.ts";
import { type Champions, type LeadScorer, scoreStaged } from "../shared/scoring/champion.ts";
import type { Population } from "../shared/scoring/features.ts";
import { DEFAULT_TRAIN_PARAMS, trainCandidate, type TrainingRow } from "../shared/scoring/train.ts";

/** The labelled rows among the first `count` seed leads of `seed`, as of `now`. */
export function seededTrainingRows(
  count: number,
  seed: number,
  now: number,
  settleDays = 14,
): TrainingRow[] {
  const rows: TrainingRow[] = [];
  for (let i = 0; i < count; i++) {
    const b = generateLead(i, { seed, now }).business;
    if (!isLabelled(b.outreach_status, b.updated_at, now, settleDays)) continue;
    rows.push({
      ...b,
      converted: b.outreach_status === "client",
      last_contacted: b.last_contacted === null ? null : new Date(b.last_contacted),
      created_at: new Date(b.created_at),
    });
  }
  return rows;
}

/**
 * Real champions in memory — a small forest per population trained on
 * seeded rows, versions `version` (pre-reply) and `version + 1` (replied) —
 * and a scorer using them as a ChampionWatcher does, for write-path suites on
 * the shared test database, where no suite may activate a champion.
 */
export function trainedChampions(
  version: number,
  now: number,
): { champions: Required<Champions>; scorer: LeadScorer } {
  const rows = seededTrainingRows(2000, 1, now);
  const train = (population: Population, v: number) => {
    const out = trainCandidate(rows, { ...DEFAULT_TRAIN_PARAMS, population, nTrees: 15 }, now);
    if (out.kind !== "trained") throw new Error(`Cannot train: ${out.reason}`);
    return { version: v, model: out.model };
  };
  const champions = {
    pre_reply: train("pre_reply", version),
    replied: train("replied", version + 1),
  };
  return { champions, scorer: { score: (lead, at) => scoreStaged(champions, lead, at) } };
}
