import assert from "node:assert/strict";
import { createLeaseTable, type Lease } from "./leases.ts";

function lease(over: Partial<Lease> = {}): Lease {
  return { tokens: 3, expiresAt: 1000, window: 7, storeRemaining: 10, reset: 5000, ...over };
}

Deno.test("a lease is spent token by token until it is empty", () => {
  const table = createLeaseTable(10);
  table.put("a", lease(), 0);
  assert.deepEqual(table.take("a", 1), { remaining: 12, reset: 5000 });
  assert.deepEqual(table.take("a", 2), { remaining: 11, reset: 5000 });
  assert.deepEqual(table.take("a", 3), { remaining: 10, reset: 5000 });
  assert.equal(table.take("a", 4), null);
  assert.equal(table.take("b", 4), null);
  // Empty: nothing to give back.
  assert.equal(table.release("a"), null);
  assert.equal(table.size, 0);
});

Deno.test("an ended lease is not spent; its unused tokens are given back once", () => {
  const table = createLeaseTable(10);
  table.put("a", lease({ tokens: 5 }), 0);
  table.put("b", lease({ tokens: 2, expiresAt: 3000 }), 0);
  assert.equal(table.take("a", 1000), null, "spent at its end");
  assert.deepEqual(table.sweep(1000), [{ identity: "a", tokens: 5, window: 7 }]);
  assert.deepEqual(table.sweep(1000), []);
  assert.equal(table.size, 1);
  assert.deepEqual(table.release("b"), { identity: "b", tokens: 2, window: 7 });
});

Deno.test("a full table evicts ended leases first, then the oldest, and gives their tokens back", () => {
  const table = createLeaseTable(2);
  table.put("old", lease({ tokens: 4, expiresAt: 10_000 }), 0);
  table.put("ended", lease({ tokens: 1, expiresAt: 50 }), 0);
  table.put("new", lease({ expiresAt: 10_000 }), 100);
  assert.equal(table.size, 2);
  table.put("newer", lease({ expiresAt: 10_000 }), 100);
  assert.equal(table.size, 2);
  assert.equal(table.take("old", 100), null);
  assert.deepEqual(
    table.sweep(100).map((b) => [b.identity, b.tokens]),
    [["ended", 1], ["old", 4]],
  );
});

Deno.test("drain() gives back every lease, live ones included", () => {
  const table = createLeaseTable(10);
  table.put("a", lease({ tokens: 2 }), 0);
  table.put("b", lease({ tokens: 0 }), 0);
  assert.deepEqual(table.drain(), [{ identity: "a", tokens: 2, window: 7 }]);
  assert.equal(table.size, 0);
});
