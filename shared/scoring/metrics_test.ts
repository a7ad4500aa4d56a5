import assert from "node:assert/strict";
import { calibrate, fitPlatt } from "./calibration.ts";
import { mulberry32 } from "./forest.ts";
import { baselineMetrics, evaluate, rocAuc } from "./metrics.ts";

Deno.test("rocAuc() counts ties half and is 0.5 for a constant score", () => {
  assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  assert.equal(rocAuc([0.5, 0.5, 0.5], [0, 1, 0]), 0.5);
  assert.ok(Number.isNaN(rocAuc([0.2, 0.3], [1, 1])));
});

Deno.test("evaluate() computes accuracy, precision, recall and log loss at the threshold", () => {
  const m = evaluate([0.9, 0.6, 0.2, 0.4], [1, 0, 1, 0], 0.5);
  assert.equal(m.accuracy, 0.5);
  assert.equal(m.precision, 0.5);
  assert.equal(m.recall, 0.5);
  assert.equal(m.positive_rate, 0.5);
  const expected = -(Math.log(0.9) + Math.log(0.4) + Math.log(0.2) + Math.log(0.6)) / 4;
  assert.ok(Math.abs(m.log_loss - expected) < 1e-12);
});

Deno.test("baselineMetrics(): the majority class's accuracy and the base rate's log loss", () => {
  const labels = [0, 0, 0, 1];
  const m = baselineMetrics(0.25, labels, 0.5);
  assert.equal(m.accuracy, 0.75);
  assert.equal(m.roc_auc, 0.5);
  const expected = -(3 * Math.log(0.75) + Math.log(0.25)) / 4;
  assert.ok(Math.abs(m.log_loss - expected) < 1e-12);
});

Deno.test("fitPlatt() recovers an overconfident score's true probability", () => {
  // True P(y=1) = σ(0.5·logit(s)): the raw score is too extreme; Platt must learn a ≈ 0.5.
  const random = mulberry32(3);
  const scores: number[] = [];
  const labels: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const s = 0.02 + 0.96 * random();
    const logit = Math.log(s / (1 - s));
    scores.push(s);
    labels.push(random() < 1 / (1 + Math.exp(-0.5 * logit)) ? 1 : 0);
  }
  const platt = fitPlatt(scores, labels);
  assert.ok(Math.abs(platt.a - 0.5) < 0.05, `a = ${platt.a}`);
  assert.ok(Math.abs(platt.b) < 0.05, `b = ${platt.b}`);
  const before = evaluate(scores, labels, 0.5).log_loss;
  const after = evaluate(scores.map((s) => calibrate(platt, s)), labels, 0.5).log_loss;
  assert.ok(after < before);
});
