/**
 * Platt scaling: P(y = 1 | s) = σ(a · logit(s) + b), fitted on a held-out
 * calibration split by Newton's method on the log loss, with Platt's
 * smoothed targets ((n₊ + 1)/(n₊ + 2) and 1/(n₋ + 2)) so that a small split
 * cannot push probabilities to exactly 0 or 1. Forest votes are biased away
 * from 0 and 1 (docs/lead-scoring.md §Calibration); a monotone map keeps the
 * ranking (ROC AUC) and fixes the probabilities.
 *
 * @module
 */

/** A fitted Platt map. */
export interface Platt {
  a: number;
  b: number;
}

const EPS = 1e-6;

function logit(p: number): number {
  const q = Math.min(1 - EPS, Math.max(EPS, p));
  return Math.log(q / (1 - q));
}

/** Applies a fitted map to a raw score in [0, 1]. */
export function calibrate(platt: Platt, score: number): number {
  return 1 / (1 + Math.exp(-(platt.a * logit(score) + platt.b)));
}

/** Fits the map to raw `scores` and their 0/1 `labels`. */
export function fitPlatt(scores: readonly number[], labels: readonly number[]): Platt {
  const positives = labels.filter((y) => y === 1).length;
  const negatives = labels.length - positives;
  const hi = (positives + 1) / (positives + 2);
  const lo = 1 / (negatives + 2);
  const xs = scores.map(logit);
  const ts = labels.map((y) => (y === 1 ? hi : lo));
  let a = 1;
  let b = 0;
  for (let iteration = 0; iteration < 100; iteration++) {
    // Gradient and Hessian of the mean log loss in (a, b), with a tiny ridge for stability.
    let ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i]!;
      const p = 1 / (1 + Math.exp(-(a * x + b)));
      const d = p - ts[i]!;
      const w = p * (1 - p);
      ga += d * x;
      gb += d;
      haa += w * x * x;
      hab += w * x;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 1e-12)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) < 1e-9 && Math.abs(db) < 1e-9) break;
  }
  return Number.isFinite(a) && Number.isFinite(b) ? { a, b } : { a: 1, b: 0 };
}
