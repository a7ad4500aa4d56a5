import assert from "node:assert/strict";
import { explainForest, mulberry32, predictForest, trainForest } from "./forest.ts";

/** y depends on feature 0 only (plus 10 % label noise); features 1–3 are noise. */
function dataset(n: number, seed: number) {
  const random = mulberry32(seed);
  const x: number[][] = [];
  const y: number[] = [];
  for (let i = 0; i < n; i++) {
    const row = [random(), random(), random(), random()];
    x.push(row);
    y.push((row[0]! > 0.5) !== (random() < 0.1) ? 1 : 0);
  }
  return { x, y };
}

Deno.test("trainForest() gives the same forest for the same seed and a different one for another", () => {
  const { x, y } = dataset(400, 1);
  const a = trainForest(x, y, { nTrees: 10, seed: 7 });
  const b = trainForest(x, y, { nTrees: 10, seed: 7 });
  const c = trainForest(x, y, { nTrees: 10, seed: 8 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
});

Deno.test("predictForest() is the mean leaf value over every tree, the first one included", () => {
  const { x, y } = dataset(300, 2);
  const forest = trainForest(x, y, { nTrees: 4, maxDepth: 3, seed: 3 });
  for (const row of x.slice(0, 20)) {
    const leaves = forest.trees.map((tree) => {
      let node = 0;
      while (tree.feature[node]! >= 0) {
        node = row[tree.feature[node]!]! <= tree.threshold[node]!
          ? tree.left[node]!
          : tree.right[node]!;
      }
      return tree.value[node]!;
    });
    const expected = leaves.reduce((s, v) => s + v, 0) / leaves.length;
    assert.ok(Math.abs(predictForest(forest, row) - expected) < 1e-12);
  }
  // A one-tree forest predicts exactly that tree's leaf (ml-random-forest's bug dropped tree #0).
  const single = trainForest(x, y, { nTrees: 1, seed: 3 });
  const p = predictForest(single, x[0]!);
  assert.ok(p >= 0 && p <= 1);
  assert.ok(single.trees[0]!.value.includes(p));
});

Deno.test("trainForest() learns the informative feature and ranks it first in the importances", () => {
  const { x, y } = dataset(2000, 4);
  const forest = trainForest(x, y, { nTrees: 30, maxDepth: 6, seed: 5 });
  const sum = forest.importances.reduce((s, v) => s + v, 0);
  assert.ok(Math.abs(sum - 1) < 1e-9);
  assert.ok(forest.importances[0]! > 0.6, `importance of feature 0: ${forest.importances[0]}`);
  const test = dataset(500, 99);
  const correct =
    test.x.filter((row, i) => (predictForest(forest, row) >= 0.5 ? 1 : 0) === test.y[i]).length;
  assert.ok(correct / 500 > 0.85, `accuracy ${correct / 500}`);
});

Deno.test("trainForest() tries features at every split: with maxFeatures 1, more than one feature is used", () => {
  const { x, y } = dataset(1000, 6);
  const forest = trainForest(x, y, { nTrees: 1, maxDepth: 6, maxFeatures: 1, seed: 1 });
  const used = new Set(forest.trees[0]!.feature.filter((f) => f >= 0));
  assert.ok(used.size > 1, `features used by one tree: ${[...used]}`);
});

Deno.test("explainForest(): bias plus contributions equals the prediction", () => {
  const { x, y } = dataset(500, 8);
  const forest = trainForest(x, y, { nTrees: 12, seed: 9 });
  for (const row of x.slice(0, 25)) {
    const { bias, contributions } = explainForest(forest, row);
    const total = bias + contributions.reduce((s, c) => s + c, 0);
    assert.ok(Math.abs(total - predictForest(forest, row)) < 1e-9);
  }
});

Deno.test("trainForest() rejects empty or mismatched input", () => {
  assert.throws(() => trainForest([], []), RangeError);
  assert.throws(() => trainForest([[1]], [1, 0]), RangeError);
});
