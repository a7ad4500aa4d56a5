import assert from "node:assert/strict";
import { createBatcher } from "./batcher.ts";

/** A `run` that records its batches and answers each item doubled, after `gate` opens. */
function recorder(gate: Promise<void> = Promise.resolve()) {
  const batches: number[][] = [];
  const run = async (items: number[]) => {
    batches.push([...items]);
    await gate;
    return items.map((x) => x * 2);
  };
  return { batches, run };
}

Deno.test("calls of one turn share a batch; each gets its own result", async () => {
  const { batches, run } = recorder();
  const call = createBatcher(run);
  assert.deepEqual(await Promise.all([1, 2, 3].map(call)), [2, 4, 6]);
  assert.deepEqual(batches, [[1, 2, 3]]);
});

Deno.test("items with one key never share a batch; maxBatch splits", async () => {
  const { batches, run } = recorder();
  const call = createBatcher(run, { keyOf: (x) => String(x % 10), maxBatch: 2 });
  assert.deepEqual(await Promise.all([1, 11, 2, 3].map(call)), [2, 22, 4, 6]);
  // 11 shares 1's key: it waits for a later batch; at most two items per batch.
  assert.deepEqual(batches, [[1, 2], [11, 3]]);
});

Deno.test("while maxInFlight batches run, new items wait and go together", async () => {
  const gate = Promise.withResolvers<void>();
  const { batches, run } = recorder(gate.promise);
  const call = createBatcher(run, { maxInFlight: 1 });
  const first = call(1);
  await new Promise((r) => setTimeout(r, 0));
  const later = [call(2), call(3)];
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(batches, [[1]], "the second batch waits for the first");
  gate.resolve();
  assert.deepEqual(await Promise.all([first, ...later]), [2, 4, 6]);
  assert.deepEqual(batches, [[1], [2, 3]]);
});

Deno.test("a batch the database refused is run again item by item", async () => {
  const batches: number[][] = [];
  const call = createBatcher((items: number[]) => {
    batches.push([...items]);
    if (items.includes(13)) {
      return Promise.reject(Object.assign(new Error("bad row"), { code: "23514" }));
    }
    return Promise.resolve(items.map((x) => x * 2));
  });
  const results = await Promise.allSettled([1, 13, 2].map(call));
  assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled"]);
  assert.deepEqual(results.map((r) => r.status === "fulfilled" ? r.value : null), [2, null, 4]);
  assert.deepEqual(batches, [[1, 13, 2], [1], [13], [2]]);
});

Deno.test("any other failure fails every item of the batch, without retries", async () => {
  let calls = 0;
  const call = createBatcher((_items: number[]) => {
    calls++;
    return Promise.reject(new Error("Connection terminated unexpectedly"));
  });
  const results = await Promise.allSettled([1, 2].map(call));
  assert.deepEqual(results.map((r) => r.status), ["rejected", "rejected"]);
  assert.equal(calls, 1);
});

Deno.test("a run answering the wrong number of results fails its items", async () => {
  const call = createBatcher((_items: number[]) => Promise.resolve([1]));
  await assert.rejects(Promise.all([call(1), call(2)]), /A batch of 2 returned 1 results/);
});

Deno.test("options are checked", () => {
  assert.throws(() => createBatcher(() => Promise.resolve([]), { maxBatch: 0 }), RangeError);
  assert.throws(() => createBatcher(() => Promise.resolve([]), { maxInFlight: 1.5 }), RangeError);
});
