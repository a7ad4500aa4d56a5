import assert from "node:assert/strict";
import type { Redis } from "@upstash/redis";
import { useTestStack } from "../../testing/stack.ts";
import { createRedis, type Deps } from "../../shared/deps.ts";
import { hashGetAll } from "../../shared/queue/queue.ts";
import { type NewLeadEvent, recordLeadEvents } from "../../shared/leads/events.ts";
import { type Queryable, withTransaction } from "../../shared/leads/transaction.ts";
import { leadFeedKeys, liveFeedKeys } from "../../shared/redis/keys.ts";
import { readHistory } from "../../shared/ws/history.ts";
import { createFeedPublisher, type FeedPublisher } from "../../shared/ws/publisher.ts";
import { bindFeedScripts } from "../../shared/ws/scripts.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { type LeadEventsRelayOptions, relayLeadEvents } from "./lead_events_relay.ts";
import type { Relay } from "./relays.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The stack's deps hold a Neon Pool whose sockets close after the test, and
// the SDK's aborted requests settle a tick later (as in relays_test.ts).
// Faults are injected by wrapping the real publisher and pool, not by fakes.
const opts = noSanitizers;

/** A relay on `namespace` with test timings; its hub is a real feed publisher. */
function relay(
  deps: Deps,
  namespace: string,
  instanceId: string,
  overrides: Partial<LeadEventsRelayOptions> & { wrap?: (p: FeedPublisher) => FeedPublisher } = {},
): Relay {
  const { wrap = (p: FeedPublisher) => p, ...rest } = overrides;
  // Other suites write lead events too; this relay publishes them all into the namespace.
  const publisher = wrap(
    createFeedPublisher({ redis: deps.redis, instanceId, namespace, historyMaxLen: 1_000_000 }),
  );
  return relayLeadEvents({
    redis: deps.redis,
    sql: deps.sql,
    hub: {
      instanceId,
      publish: (t, d, o) => publisher.publish(t, d, o),
      publishMany: (t, items) => publisher.publishMany(t, items),
    },
    namespace,
    pollMs: 20,
    pageSize: 16,
    // Calls time out at half the lease: generous, so a loaded machine's slow
    // query is not an outage (tests that need short leases set their own).
    leaseMs: 4000,
    log: deps.log,
    ...rest,
  });
}

interface Message {
  key: string | null;
  origin: string;
  data: { id: string; lead_id: string; event_type: string; source: string; time: string };
}

/** Every `leads` message of the namespace, in offset order. */
async function history(redis: Redis, namespace: string): Promise<Message[]> {
  const ctx = { scripts: bindFeedScripts(redis), keys: liveFeedKeys(namespace) };
  const read = await readHistory(ctx, "leads", "0-0");
  assert.equal(read.complete, true);
  return read.messages.map((m) => ({ key: m.key, origin: m.origin, data: JSON.parse(m.data) }));
}

/** The ids published for `leads`, in order; fails on any event published twice. */
async function published(redis: Redis, namespace: string, leads: string[]): Promise<string[]> {
  const all = await history(redis, namespace);
  const seen = new Set<string>();
  for (const m of all) {
    const id = `${m.data.id}|${m.data.time}`;
    assert.ok(!seen.has(id), `event ${id} was published twice`);
    seen.add(id);
  }
  return all.filter((m) => leads.includes(m.key ?? "")).map((m) => m.data.id);
}

function events(lead: string, n: number, source: string): NewLeadEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    id: crypto.randomUUID(),
    lead_id: lead,
    event_type: "lead_updated",
    event_data: { n: i },
    source,
  }));
}

const ids = (list: NewLeadEvent[]) => list.map((e) => e.id!);
const sorted = (list: string[]) => [...list].sort();
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function progressRecorded(redis: Redis, namespace: string): Promise<void> {
  const key = leadFeedKeys(namespace).state;
  await waitUntil(async () => (await redis.hget(key, "progress")) !== null, {
    what: "recorded progress",
  });
}

Deno.test({
  name: "relayLeadEvents() checks its options when it is built",
  fn() {
    const redis = createRedis({ url: "http://127.0.0.1:1", token: "x" });
    const sql: Queryable = { query: (() => Promise.reject(new Error("unused"))) as never };
    const unused = () => Promise.reject(new Error("unused"));
    const hub = { instanceId: "A", publish: unused, publishMany: unused };
    const base = { redis, sql, hub };
    assert.throws(() => relayLeadEvents({ ...base, redis: undefined as never }), TypeError);
    assert.throws(() => relayLeadEvents({ ...base, sql: {} as never }), TypeError);
    assert.throws(() => relayLeadEvents({ ...base, hub: {} as never }), TypeError);
    assert.throws(() => relayLeadEvents({ ...base, namespace: "a b" }), TypeError);
    assert.throws(() => relayLeadEvents({ ...base, pollMs: 0 }), RangeError);
    assert.throws(() => relayLeadEvents({ ...base, pageSize: 1.5 }), RangeError);
    assert.throws(() => relayLeadEvents({ ...base, pageSize: 10_001 }), RangeError);
    assert.throws(() => relayLeadEvents({ ...base, batchSize: 0 }), RangeError);
    assert.throws(
      () => relayLeadEvents({ ...base, pollMs: 250, leaseMs: 999 }),
      /"leaseMs" must be at least 4 × pollMs \(1000\): got 999/,
    );
    assert.throws(() => relayLeadEvents({ ...base, leaseMs: 1000, timeoutMs: 501 }), RangeError);
    relayLeadEvents({ ...base, pollMs: 250, leaseMs: 1000 });
    // Without a lease, a slow poll gets one of four polls.
    relayLeadEvents({ ...base, pollMs: 2000 });
  },
});

Deno.test({
  name: "relayLeadEvents() publishes each committed lead event once, across relays and restarts",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const writer = stack.makeDeps();
    const [depsA, depsB] = [stack.makeDeps(), stack.makeDeps()];
    const namespace = testNamespace();
    const lead = crypto.randomUUID();
    const expected: string[] = [];
    const check = async (what: string) => {
      await waitUntil(
        async () => (await published(writer.redis, namespace, [lead])).length >= expected.length,
        { what, timeoutMs: 10_000 },
      );
      await pause(150); // a repeat would have arrived by now
      assert.deepEqual(sorted(await published(writer.redis, namespace, [lead])), sorted(expected));
    };

    const before = events(lead, 1, "test:before");
    await recordLeadEvents(writer.sql, before);
    let relays = [relay(depsA, namespace, "A"), relay(depsB, namespace, "B")];
    try {
      await Promise.all(relays.map((r) => r.start()));
      await progressRecorded(writer.redis, namespace);

      await t.step("a slow transaction's event is published when it commits", async () => {
        const slow = events(lead, 1, "test:slow");
        const client = await writer.sql.connect();
        try {
          await client.query("BEGIN");
          await recordLeadEvents(client, slow);
          // Newer transactions commit first: one event, then a batch of several pages.
          const single = events(lead, 1, "test:single");
          const batch = events(lead, 40, "test:batch");
          await recordLeadEvents(writer.sql, single);
          await withTransaction(writer.sql, (c) => recordLeadEvents(c, batch));
          expected.push(...ids(single), ...ids(batch));
          await check("the newer events");
          await client.query("COMMIT");
        } finally {
          client.release();
        }
        expected.push(...ids(slow));
        await check("the slow event");
        const order = await published(writer.redis, namespace, [lead]);
        assert.equal(order.at(-1), slow[0]!.id!, "the slow event comes out last");
        assert.ok(!order.includes(before[0]!.id!), "events from before the first start are not");
      });

      await t.step("messages carry the event, keyed by its lead", async () => {
        const m = (await history(writer.redis, namespace)).find((m) => m.key === lead)!;
        assert.deepEqual(Object.keys(m.data).sort(), [
          "event_data",
          "event_type",
          "id",
          "lead_id",
          "source",
          "time",
        ]);
        assert.equal(m.data.lead_id, lead);
        assert.match(m.data.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      });

      await t.step("a restarted relay continues from the recorded progress", async () => {
        await Promise.all(relays.map((r) => r.stop()));
        const gap = events(lead, 5, "test:gap");
        await recordLeadEvents(writer.sql, gap);
        relays = [relay(depsB, namespace, "C")];
        await relays[0]!.start();
        expected.push(...ids(gap));
        await check("the events committed while no relay ran");
      });

      await t.step(
        "a successor skips what its predecessor published but never recorded",
        async () => {
          const state = leadFeedKeys(namespace).state;
          const recorded = await hashGetAll(writer.redis, state);
          assert.ok(recorded.progress && recorded.at);
          const unrecorded = events(lead, 6, "test:unrecorded");
          await recordLeadEvents(writer.sql, unrecorded);
          expected.push(...ids(unrecorded));
          await check("the events of the relay about to die");
          // It dies: its last progress is lost and its lease is still held for a while.
          await relays[0]!.stop();
          await writer.redis.hset(state, recorded);
          await writer.redis.set(leadFeedKeys(namespace).lease, "dead:0", { px: 300 });
          relays = [relay(depsA, namespace, "D")];
          await relays[0]!.start();
          const after = events(lead, 2, "test:after");
          await recordLeadEvents(writer.sql, after);
          expected.push(...ids(after));
          await check("the events after the takeover");
        },
      );
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
  },
});

Deno.test({
  name: "relayLeadEvents() does not repeat a publish whose answer was lost",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const namespace = testNamespace();
    const lead = crypto.randomUUID();
    let calls = 0;
    const r = relay(deps, namespace, "A", {
      batchSize: 2,
      wrap: (p) => ({
        ...p,
        async publishMany(topic, items) {
          const out = await p.publishMany(topic, items);
          if (++calls === 2) throw new Error("connection reset after the write");
          return out;
        },
      }),
    });
    try {
      await r.start();
      await progressRecorded(deps.redis, namespace);
      const list = events(lead, 5, "test:lost");
      await recordLeadEvents(deps.sql, list);
      await waitUntil(
        async () => (await published(deps.redis, namespace, [lead])).length >= list.length,
        { what: "the events" },
      );
      await pause(150);
      assert.deepEqual(sorted(await published(deps.redis, namespace, [lead])), sorted(ids(list)));
      assert.ok(calls >= 2);
      // The lost answer surfaced as a failed poll (logged once), and nothing repeated.
      assert.ok(deps.logs.some((l) => l.includes("lead events relay poll failed")));
    } finally {
      await r.stop();
    }
  },
});

Deno.test({
  name: "relayLeadEvents() renews its lease in the middle of a slow page, and keeps it",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = [stack.makeDeps(), stack.makeDeps()] as const;
    const namespace = testNamespace();
    const lead = crypto.randomUUID();
    // 16 publish calls of 25 ms each take four times the 100 ms publishing window.
    const slow = (p: FeedPublisher): FeedPublisher => ({
      ...p,
      publishMany: (topic, items) => pause(25).then(() => p.publishMany(topic, items)),
    });
    const options = { leaseMs: 200, pageSize: 16, batchSize: 1, wrap: slow };
    const relays = [
      relay(deps[0], namespace, "A", options),
      relay(deps[1], namespace, "B", options),
    ];
    try {
      await Promise.all(relays.map((r) => r.start()));
      await progressRecorded(deps[0].redis, namespace);
      const list = events(lead, 40, "test:slow_page");
      await recordLeadEvents(deps[0].sql, list);
      await waitUntil(
        async () => (await published(deps[0].redis, namespace, [lead])).length >= list.length,
        { what: "the events", timeoutMs: 10_000 },
      );
      await pause(150);
      assert.deepEqual(
        sorted(await published(deps[0].redis, namespace, [lead])),
        sorted(ids(list)),
      );
      const origins = (await history(deps[0].redis, namespace)).filter((m) => m.key === lead)
        .map((m) => m.origin);
      assert.equal(new Set(origins).size, 1, "one relay published them all");
      const logs = [...deps[0].logs, ...deps[1].logs];
      assert.equal(logs.filter((l) => l.includes("lost its lease")).length, 0);
    } finally {
      await Promise.all(relays.map((r) => r.stop()));
    }
  },
});

Deno.test({
  name: "relayLeadEvents() rides out outages and publishes what was committed meanwhile",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();

    await t.step("Postgres down, then back", async () => {
      const namespace = testNamespace();
      const lead = crypto.randomUUID();
      let down = false;
      const sql: Queryable = {
        query: ((...args: Parameters<Queryable["query"]>) =>
          down
            ? Promise.reject(new Error("connection refused"))
            : deps.sql.query(...args)) as Queryable["query"],
      };
      const r = relay(deps, namespace, "A", { sql });
      try {
        await r.start();
        await progressRecorded(deps.redis, namespace);
        down = true;
        const list = events(lead, 3, "test:outage");
        await recordLeadEvents(deps.sql, list);
        await pause(200);
        assert.deepEqual(await published(deps.redis, namespace, [lead]), []);
        down = false;
        await waitUntil(
          async () =>
            (await published(deps.redis, namespace, [lead])).length === list.length,
          { what: "the events committed during the outage" },
        );
        // One warning per outage, not one per failed poll (about ten polls
        // failed here), each followed by one "recovered" line. Under a loaded
        // machine a slow query may time out and count as a second, short outage.
        const logged = (what: string) => deps.logs.filter((l) => l.includes(what)).length;
        await waitUntil(
          () => logged("lead events relay recovered") === logged("lead events relay poll failed"),
          { what: "a recovered line for each warning" },
        );
        assert.ok(logged("lead events relay poll failed") >= 1);
        assert.ok(logged("lead events relay poll failed") <= 2, deps.logs.join("\n"));
      } finally {
        await r.stop();
      }
    });

    await t.step("Redis unreachable: it keeps retrying and stops promptly", async () => {
      const dead = { ...deps, redis: createRedis({ url: "http://127.0.0.1:1", token: "x" }) };
      const r = relay(dead, testNamespace(), "A");
      await r.start();
      await pause(100);
      const started = performance.now();
      await r.stop();
      assert.ok(performance.now() - started < 1000, "stop() waits at most one call");
    });
  },
});

Deno.test({
  name: "relayLeadEvents() by default publishes a backlog in calls of up to 500 events",
  ...opts,
  async fn() {
    const sizes: number[] = [];
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const [namespace, lead] = [testNamespace(), crypto.randomUUID()];
    // The defaults (page 2,000, batch 500), not the suite's small pages.
    const r = relay(deps, namespace, "A", {
      pageSize: undefined,
      wrap: (p) => ({
        ...p,
        publishMany(topic, items) {
          sizes.push(items.length);
          return p.publishMany(topic, items);
        },
      }),
    });
    try {
      await r.start();
      await progressRecorded(deps.redis, namespace);
      const list = events(lead, 1_200, "test:backlog");
      await withTransaction(deps.sql, (c) => recordLeadEvents(c, list));
      await waitUntil(
        async () => (await published(deps.redis, namespace, [lead])).length >= list.length,
        { what: "the backlog", timeoutMs: 10_000 },
      );
      // Other suites' events share the table: the calls carrying ours, not their count.
      assert.equal(Math.max(...sizes), 500);
      const got = await published(deps.redis, namespace, [lead]);
      assert.deepEqual(sorted(got), sorted(ids(list)));
    } finally {
      await r.stop();
    }
  },
});
