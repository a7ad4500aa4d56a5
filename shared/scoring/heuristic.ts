/**
 * The heuristic `lead_score` the platform used before it learnt one, and
 * still uses while no model is the champion: the seed pipeline's features
 * with hand-set weights (the demo generator, dev/seed_data.ts, writes the
 * same score).
 *
 * @module
 */
import type { FeatureSource } from "./features.ts";

/** 0–100, one decimal. */
export function heuristicScore(
  lead: Omit<
    FeatureSource,
    "created_at" | "last_contacted" | "response_time_hours" | "category" | "city"
  >,
): number {
  const signal = 0.9 * ((lead.rating ?? 3.8) - 4.2) +
    0.55 * (Math.log10(1 + lead.reviews) - 1.6) +
    (lead.phone_valid ? 0.3 : -0.4) +
    (lead.email_confidence_score === null ? -1 : 1.2 * (lead.email_confidence_score - 0.6)) +
    (lead.has_website ? -1.0 : 0.35);
  const score = 100 * (1 / (1 + Math.exp(-(0.9 * signal + 0.3))));
  return Math.round(score * 10) / 10;
}
