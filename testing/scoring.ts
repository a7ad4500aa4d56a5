/**
 * Labelled leads from the seed generator (dev/seed_data.ts) without a
 * database, for the training tests and the benchmark.
 *
 * @module
 */
import { generateLead } from "../dev/seed_data.ts";
import { isLabelled } from "../shared/scoring/labels.ts";
import { type LeadScorer, scoreWith } from "../shared/scoring/champion.ts";
import type { ScoringModel } from "../shared/scoring/model.ts";
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
 * A real champion in memory — a small forest trained on seeded rows — and a
 * scorer using it with a made-up `version` (what a ChampionWatcher would
 * hold), for write-path suites on the shared test database, where no suite
 * may activate a champion.
 */
export function trainedChampion(
  version: number,
  now: number,
): { champion: { version: number; model: ScoringModel }; scorer: LeadScorer } {
  const outcome = trainCandidate(
    seededTrainingRows(2000, 1, now),
    { ...DEFAULT_TRAIN_PARAMS, nTrees: 15 },
    now,
  );
  if (outcome.kind !== "trained") throw new Error(`Cannot train: ${outcome.reason}`);
  const champion = { version, model: outcome.model };
  return { champion, scorer: { score: (lead, at) => scoreWith(champion, lead, at) } };
}
