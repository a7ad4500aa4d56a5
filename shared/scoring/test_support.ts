/**
 * Labelled leads from the seed generator (dev/seed_data.ts) without a
 * database, for the training tests and the benchmark.
 *
 * @module
 */
import { generateLead } from "../../dev/seed_data.ts";
import { isLabelled } from "./labels.ts";
import type { TrainingRow } from "./train.ts";

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
