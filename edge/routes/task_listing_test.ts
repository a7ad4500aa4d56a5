import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { claim, fail } from "../../shared/queue/leases.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

interface Row {
  id: string;
  type: string;
  state: string;
  status: string;
  priority: string;
  attempts: number;
  enqueued_by: string | null;
  [k: string]: unknown;
}

Deno.test({
  name:
    "GET /v1/tasks lists each queue state newest first, pages by cursor, admins and operators only",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    // A private namespace: no worker of another suite claims these tasks.
    await using h = await routeHarness(stack);
    const { queue } = h;
    const enqueue = async (echo: string, options = {}) =>
      (await queue.enqueue("noop", { echo }, { principal: "sa:minerva", ...options })).id;
    const normal = [];
    for (let i = 0; i < 5; i++) normal.push(await enqueue(`n${i}`));
    const high = await enqueue("h", { priority: "high" });
    const later = await enqueue("later", { delayMs: 60_000 });
    const latest = await enqueue("latest", { delayMs: 120_000 });
    // Another type, skipped by a type filter.
    const refresh = (await queue.enqueue("refresh_lead_metrics", {}, { priority: "low" })).id;

    const admin = await h.token("u-admin", ["admin"]);
    const list = async (query: string, auth = admin) => {
      const res = await h.call("GET", `/v1/tasks?${query}`, { auth });
      assert.equal(res.status, 200, await res.clone().text());
      return await res.json() as { data: Row[]; next_cursor: string | null; total: number | null };
    };

    // ready: claim order (high first), newest queued first within a priority.
    const ready = await list("state=ready&type=noop");
    assert.deepEqual(ready.data.map((t) => t.id), [high, ...normal.toReversed()]);
    assert.ok(ready.data.every((t) => t.state === "ready" && t.status === "pending"));
    assert.equal(ready.data[0]!.priority, "high");
    assert.equal(ready.data[0]!.enqueued_by, "sa:minerva", "admins see who enqueued it");
    assert.equal(ready.total, null, "a type filter has no cheap total");
    assert.equal(ready.next_cursor, null);
    for (const row of ready.data) {
      for (const hidden of ["payload", "result", "last_error", "dlq_reason"]) {
        assert.ok(!(hidden in row), `${hidden} is not listed`);
      }
    }

    // Paging: two at a time, nothing repeated or skipped, across the priority lists.
    const unfiltered = await list("state=ready&limit=100");
    assert.equal(unfiltered.total, 7);
    assert.equal(unfiltered.data.at(-1)!.id, refresh);
    assert.equal(unfiltered.data.at(-1)!.type, "refresh_lead_metrics");
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof list>> = await list(
        `state=ready&limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      assert.ok(page.data.length <= 2);
      seen.push(...page.data.map((t) => t.id));
      cursor = page.next_cursor;
    } while (cursor !== null);
    assert.deepEqual(seen, unfiltered.data.map((t) => t.id));

    // One priority; a task claimed between two pages neither repeats nor shifts the rest.
    const first = await list("state=ready&priority=normal&limit=2");
    assert.deepEqual(first.data.map((t) => t.id), [normal[4], normal[3]]);
    assert.equal(first.total, 5);
    const { tasks: claimed } = await claim(queue.ctx, { max: 2, leaseMs: 30_000, workerId: "w1" });
    assert.deepEqual(claimed.map((t) => t.id), [high, normal[0]]);
    const second = await list(`state=ready&priority=normal&limit=2&cursor=${first.next_cursor}`);
    assert.deepEqual(second.data.map((t) => t.id), [normal[2], normal[1]]);
    assert.equal(second.next_cursor, null, "the oldest was claimed: nothing follows");

    // delayed: latest due first.
    const delayed = await list("state=delayed");
    assert.deepEqual(delayed.data.map((t) => t.id), [latest, later]);
    assert.ok(delayed.data[0]!.run_at! > delayed.data[1]!.run_at!);
    assert.equal(delayed.total, 2);

    // running, then dead after a permanent failure.
    const running = await list("state=running");
    assert.deepEqual(new Set(running.data.map((t) => t.id)), new Set([high, normal[0]]));
    assert.ok(running.data.every((t) => t.status === "running" && t.attempts === 1));
    await fail(queue.ctx, [{
      id: claimed[0]!.id,
      leaseToken: claimed[0]!.leaseToken,
      error: "Error: secret detail",
      permanent: true,
      backoffMs: 0,
    }]);
    const dead = await list("state=dead&type=noop");
    assert.deepEqual(dead.data.map((t) => t.id), [high]);
    assert.equal(dead.total, 1, "the DLQ's per-type index counts cheaply");
    assert.ok(dead.data[0]!.failed_at);
    assert.ok(!JSON.stringify(dead).includes("secret detail"));
    assert.equal((await list("state=dead&type=send_email")).total, 0);

    // Operators list too, without who enqueued what; viewers and services may not.
    const asOperator = await list("state=delayed", h.tokens.operator);
    assert.equal(asOperator.data.length, 2);
    assert.ok(asOperator.data.every((t) => t.enqueued_by === null));
    const denied = await h.call("GET", "/v1/tasks?state=ready", { auth: h.tokens.viewer });
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).permission, "GET /v1/tasks");
    assert.equal((await h.call("GET", "/v1/tasks?state=ready")).status, 403, "sa:minerva");
    assert.equal((await h.call("GET", "/v1/tasks?state=ready", { auth: null })).status, 401);
  },
});

Deno.test({
  name: "GET /v1/tasks refuses what it cannot list with 400 naming the field",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack);
    const auth = h.tokens.operator;
    const cases: [string, string][] = [
      ["", "query.state"],
      ["state=succeeded", "query.state"],
      ["state=ready&limit=501", "query.limit"],
      ["state=delayed&priority=high", "query.priority"],
      ["state=ready&type=Bad%20Type", "query.type"],
      ["state=ready&cursor=bm9wZQ", "query.cursor"],
      ["state=ready&stauts=x", "query.stauts"],
    ];
    for (const [query, field] of cases) {
      const res = await h.call("GET", `/v1/tasks?${query}`, { auth });
      assert.equal(res.status, 400, query);
      const body = await res.json();
      assert.equal(body.code, "invalid-request", query);
      assert.ok(
        body.invalid_fields.some((f: { field: string }) => f.field === field),
        `${query}: ${JSON.stringify(body.invalid_fields)}`,
      );
    }
    // A cursor of one state is refused for another.
    for (let i = 0; i < 2; i++) {
      await h.queue.enqueue("noop", { echo: `c${i}` }, { delayMs: 60_000 });
    }
    const page = await (await h.call("GET", "/v1/tasks?state=delayed&limit=1", { auth })).json();
    assert.ok(page.next_cursor);
    const res = await h.call("GET", `/v1/tasks?state=running&cursor=${page.next_cursor}`, { auth });
    assert.equal(res.status, 400);
  },
});

Deno.test({
  name: "GET /v1/tasks/types shows admins every type and others the public types they may enqueue",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack);
    const admin = await h.token("u-admin", ["admin"]);
    const types = async (auth: string | undefined) => {
      const res = await h.call("GET", "/v1/tasks/types", { auth });
      assert.equal(res.status, 200, await res.clone().text());
      return (await res.json()).data as Record<string, unknown>[];
    };
    const all = await types(admin);
    const names = all.map((t) => t.type);
    assert.deepEqual(names, [...names].sort());
    assert.deepEqual(new Set(names), new Set(Object.keys(h.queue.catalog)));
    const email = all.find((t) => t.type === "send_email")!;
    assert.equal(email.public, false);
    assert.equal(email.enqueueable, false);
    assert.equal(email.max_attempts, 5);
    assert.equal(email.timeout_ms, 30_000);
    const noop = all.find((t) => t.type === "noop")!;
    assert.deepEqual(
      { public: noop.public, enqueueable: noop.enqueueable, priority: noop.priority },
      { public: true, enqueueable: true, priority: "normal" },
    );
    const schema = noop.payload_schema as Record<string, unknown>;
    assert.equal(schema.type, "object");
    assert.deepEqual(Object.keys(schema.properties as object), ["echo"]);
    assert.equal(schema.additionalProperties, false);

    // Minerva and operators may enqueue noop; a viewer may enqueue nothing.
    assert.deepEqual((await types(undefined)).map((t) => t.type), ["noop"]);
    assert.deepEqual((await types(h.tokens.operator)).map((t) => t.type), ["noop"]);
    assert.deepEqual(await types(h.tokens.viewer), []);
    assert.equal((await h.call("GET", "/v1/tasks/types", { auth: null })).status, 401);
  },
});
