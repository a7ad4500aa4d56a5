import assert from "node:assert/strict";
import { memoryLog } from "../../testing/log.ts";
import type { ClientInfo } from "../../shared/ws/client_registry.ts";
import { RegistryBatch } from "./registry_batch.ts";

/** A registry that records calls; each call waits until the test releases it. */
function fakeRegistry() {
  const calls: string[] = [];
  const gates: (() => void)[] = [];
  let fail = false;
  const gate = () => {
    const { promise, resolve } = Promise.withResolvers<void>();
    gates.push(resolve);
    return promise.then(() => {
      if (fail) throw new Error("redis away");
    });
  };
  return {
    calls,
    failNext: () => void (fail = true),
    /** Lets every call started so far answer. */
    release: () => gates.splice(0).forEach((g) => g()),
    registry: {
      touch(clients: readonly { id: string; info: ClientInfo | null }[]) {
        calls.push(`touch ${clients.map((c) => c.id).join(",")}`);
        return gate();
      },
      remove(ids: readonly string[]) {
        calls.push(`remove ${ids.join(",")}`);
        return gate();
      },
    },
  };
}

const info = (user: string): ClientInfo => ({ instance: "A", user, connected_at: 1 });
const tick = () => new Promise((r) => setTimeout(r, 0));

/** The registry calls that `ops` lead to once everything was sent and answered. */
async function callsAfter(ops: (batch: RegistryBatch) => void): Promise<string[]> {
  const fake = fakeRegistry();
  const batch = new RegistryBatch({ registry: fake.registry, log: memoryLog().log, delayMs: 0 });
  ops(batch);
  const done = batch.flush();
  fake.release();
  await done;
  return fake.calls;
}

Deno.test("RegistryBatch registers the sockets of the same moment in one call", async () => {
  const calls = await callsAfter((batch) => {
    batch.register("c1", info("u1"));
    batch.register("c2", info("u2"));
    batch.register("c3", info("u3"));
  });
  assert.deepEqual(calls, ["touch c1,c2,c3"]);
});

Deno.test("RegistryBatch: a socket gone before its registration went out is never registered", async () => {
  const calls = await callsAfter((batch) => {
    batch.register("c1", info("u1"));
    batch.register("c2", info("u2"));
    batch.unregister("c1");
  });
  assert.deepEqual(calls, ["touch c2"]);
});

Deno.test("RegistryBatch: a removal waits for the call registering it, never overtakes it", async () => {
  const fake = fakeRegistry();
  const batch = new RegistryBatch({ registry: fake.registry, log: memoryLog().log, delayMs: 0 });
  batch.register("c1", info("u1"));
  batch.register("c2", info("u2"));
  await tick(); // the touch is out, unanswered
  assert.deepEqual(fake.calls, ["touch c1,c2"]);
  batch.unregister("c1");
  await tick();
  assert.deepEqual(fake.calls, ["touch c1,c2"], "no removal while its registration is in flight");
  fake.release();
  await tick();
  assert.deepEqual(fake.calls, ["touch c1,c2", "remove c1"]);
  // Registered and answered: a later removal goes out with the next batch.
  batch.unregister("c2");
  const done = batch.flush();
  fake.release();
  await done;
  fake.release();
  assert.deepEqual(fake.calls, ["touch c1,c2", "remove c1", "remove c2"]);
});

Deno.test("RegistryBatch logs a failed call and keeps going", async () => {
  const fake = fakeRegistry();
  const { log, lines } = memoryLog();
  const batch = new RegistryBatch({ registry: fake.registry, log, delayMs: 0 });
  fake.failNext();
  batch.register("c1", info("u1"));
  const done = batch.flush();
  fake.release();
  await done;
  assert.equal(lines[0]?.msg, "live feed client registration failed");
  assert.equal(lines[0]?.clients, 1);
});

Deno.test("RegistryBatch.discard drops what was not sent", async () => {
  const fake = fakeRegistry();
  const batch = new RegistryBatch({ registry: fake.registry, log: memoryLog().log, delayMs: 1000 });
  batch.register("c1", info("u1"));
  batch.unregister("c0");
  batch.discard();
  await batch.flush();
  assert.deepEqual(fake.calls, []);
});
