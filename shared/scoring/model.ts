/**
 * A scoring model as stored in the registry (JSON), and scoring one lead
 * with it: features → forest → Platt map → 0–100.
 *
 * @module
 */
import { calibrate, type Platt } from "./calibration.ts";
import {
  FEATURE_NAMES,
  type FeatureSource,
  featureVector,
  selectFeatures,
  type Vocabulary,
} from "./features.ts";
import { explainForest, type Forest, predictForest } from "./forest.ts";

/** The serialised model (`ml_models.model`). */
export interface ScoringModel {
  format: "pc-forest-v1";
  /** The features the forest reads, in its column order: a subset of FEATURE_NAMES. */
  features: string[];
  vocabulary: Vocabulary;
  forest: Forest;
  platt: Platt;
}

/** One feature's share of a score. */
export interface Contribution {
  feature: string;
  /** The feature's value in the vector (after fillna). */
  value: number;
  /** Change of the raw forest probability along the decision paths, in score points (× 100). */
  points: number;
}

/** A scored lead. */
export interface Score {
  /** Calibrated probability × 100, one decimal. */
  lead_score: number;
  probability: number;
}

/** Checks a stored model's shape before use; throws on anything else. */
export function assertModel(value: unknown): ScoringModel {
  const m = value as ScoringModel;
  const ok = m !== null && typeof m === "object" && m.format === "pc-forest-v1" &&
    Array.isArray(m.features) && m.features.length > 0 &&
    new Set(m.features).size === m.features.length &&
    m.features.every((f) => (FEATURE_NAMES as readonly string[]).includes(f)) &&
    Array.isArray(m.forest?.trees) && m.forest.trees.length > 0 &&
    Number.isFinite(m.platt?.a) && Number.isFinite(m.platt?.b);
  if (!ok) throw new TypeError("Stored scoring model has an unknown format or feature list");
  return m;
}

/**
 * The model's input for `lead` as of `now`: the ONE feature function
 * (features.ts) and the model's own columns of it — what training and
 * scoring both use.
 */
export function modelVector(model: ScoringModel, lead: FeatureSource, now: number): number[] {
  return selectFeatures(featureVector(lead, model.vocabulary, now), model.features);
}

/** The score of a feature vector (the model's columns). */
export function scoreVector(model: ScoringModel, vector: readonly number[]): Score {
  const probability = calibrate(model.platt, predictForest(model.forest, vector));
  return { lead_score: Math.round(probability * 1000) / 10, probability };
}

/** The score of `lead` as of `now` (epoch ms). */
export function scoreLead(model: ScoringModel, lead: FeatureSource, now: number): Score {
  return scoreVector(model, modelVector(model, lead, now));
}

/** The `count` features that moved the lead's score most (either way), largest first. */
export function topContributions(
  model: ScoringModel,
  lead: FeatureSource,
  now: number,
  count = 3,
): Contribution[] {
  return explainLead(model, lead, now, count).factors;
}

/**
 * The score and its top `count` contributions from ONE pass down the trees
 * (the forest's probability is its bias plus the contributions), what a
 * write stores.
 */
export function explainLead(
  model: ScoringModel,
  lead: FeatureSource,
  now: number,
  count = 3,
): Score & { factors: Contribution[] } {
  const vector = modelVector(model, lead, now);
  const { bias, contributions } = explainForest(model.forest, vector);
  const raw = contributions.reduce((sum, c) => sum + c, bias);
  const probability = calibrate(model.platt, Math.min(1, Math.max(0, raw)));
  const factors = contributions
    .map((c, i) => ({
      feature: model.features[i]!,
      value: Math.round(vector[i]! * 1000) / 1000,
      points: Math.round(c * 1000) / 10,
    }))
    .sort((a, b) => Math.abs(b.points) - Math.abs(a.points))
    .slice(0, count);
  return { lead_score: Math.round(probability * 1000) / 10, probability, factors };
}
