import assert from "node:assert/strict";
import { createLeaseTable, type Lease } from "./leases.ts";

function lease(over: Partial<Lease> = {}): Lease {
  return {
    granted: 4,
    tokens: 3,
    expiresAt: 1000,
    window: 7,
    storeRemaining: 10,
    reset: 5000,
    ...over,
  };
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
  assert.equal(table.release("a", 4), null);
  assert.equal(table.size, 0);
});

Deno.test("a lease past its end is not spent; its unused tokens are given back once", () => {
  const table = createLeaseTable(10);
  table.put("a", lease({ tokens: 5 }), 0);
  table.put("b", lease({ tokens: 2, expiresAt: 3000 }), 0);
  assert.equal(table.take("a", 1000), null, "spent at its end");
  assert.deepEqual(table.sweep(1000), [{ identity: "a", tokens: 5, window: 7 }]);
  assert.deepEqual(table.sweep(1000), []);
  assert.equal(table.size, 1);
  assert.deepEqual(table.release("b", 1000), { identity: "b", tokens: 2, window: 7 });
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

Deno.test("nextSize(): one token without a recent lease; twice a lease the caller ran out of early; else what it spent", () => {
  const table = createLeaseTable(10);
  const ttl = 1000;
  assert.equal(table.nextSize("a", 0, ttl, 100), 1, "no history: one token, no lease");
  // A grant of 1 the next request found empty before its end: 2, then 4, … up to the maximum.
  table.put("a", lease({ granted: 1, tokens: 0, expiresAt: 1000 }), 0);
  assert.equal(table.release("a", 10), null);
  assert.equal(table.nextSize("a", 10, ttl, 100), 2);
  table.put("a", lease({ granted: 64, tokens: 0, expiresAt: 1010 }), 10);
  table.release("a", 20);
  assert.equal(table.nextSize("a", 20, ttl, 100), 100);
  // A lease that lived out its life spent 10 of 100: ask for 10.
  table.put("a", lease({ granted: 100, tokens: 90, expiresAt: 1020 }), 20);
  assert.deepEqual(table.sweep(1500).map((b) => b.tokens), [90]);
  assert.equal(table.nextSize("a", 1500, ttl, 100), 10);
  // Ended (at its expiry, 1020) longer than a lease lifetime ago: back to one.
  assert.equal(table.nextSize("a", 2021, ttl, 100), 1);
  // A caller coming back after its one-token lease ended asks for one again.
  table.put("b", lease({ granted: 1, tokens: 0, expiresAt: 500 }), 0);
  assert.deepEqual(table.sweep(400), [], "an empty lease stays until its end");
  assert.deepEqual(table.sweep(600), []);
  assert.equal(table.nextSize("b", 600, ttl, 100), 1);
});

Deno.test("sweep() hands back at most `max` leases at a time; the rest stay for the next sweep", () => {
  const table = createLeaseTable(10);
  for (const id of ["a", "b", "c"]) table.put(id, lease({ tokens: 2, expiresAt: 100 }), 0);
  table.put("empty", lease({ tokens: 0, expiresAt: 100 }), 0);
  assert.deepEqual(table.sweep(200, 2).map((b) => b.identity), ["a", "b"]);
  // The empty one needed no give-back and is gone; c waited.
  assert.equal(table.size, 1);
  assert.deepEqual(table.sweep(200, 2).map((b) => b.identity), ["c"]);
  assert.equal(table.size, 0);
});
