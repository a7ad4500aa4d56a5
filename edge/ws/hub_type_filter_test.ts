import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { type Frame, startInstance, TestClient, token } from "../../testing/live_feed.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously and the deps hold a Neon Pool.
const opts = noSanitizers;

/** A lead event as the relay publishes it (edge/ws/lead_events_relay.ts). */
const event = (n: number, type: string) => ({
  id: `00000000-0000-4000-8000-${String(n).padStart(12, "0")}`,
  lead_id: "l1",
  event_type: type,
  event_data: { n },
  source: "test",
  time: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
});

const typesOf = (frames: Frame[]) =>
  frames.map((f) => (f.data as { event_type: string }).event_type);

/** Sends a subscribe frame and waits for one answer per topic (subscribed or error). */
async function subscribe(c: TestClient, frame: Record<string, unknown>, answers: number) {
  const seen = c.frames.length;
  c.send({ type: "subscribe", ...frame });
  const got = () =>
    c.frames.slice(seen).filter((f) => f.type === "subscribed" || f.type === "error");
  await waitUntil(() => got().length >= answers, { what: `${answers} answer(s)` });
  return got();
}

Deno.test({
  name: "live feed: the leads topic filtered by event type",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const auth = deps.config.auth;
    const operator = await token(auth, "olga", { roles: ["operator"] });
    await using a = await startInstance(deps, { namespace: testNamespace(), instanceId: "A" });

    let before = "";
    await t.step("types narrows leads to those types; other sockets still get all", async () => {
      const filtered = await TestClient.connect(a, operator);
      const all = await TestClient.connect(a, operator);
      try {
        const answers = await subscribe(filtered, {
          topics: ["leads"],
          types: ["status_changed", "email_replied"],
        }, 1);
        assert.deepEqual(answers.map((f) => f.type), ["subscribed"]);
        before = answers[0]!.offset as string;
        await all.subscribe(["leads"]);
        const types = ["lead_created", "status_changed", "note_added", "email_replied"];
        for (const [i, type] of types.entries()) {
          await a.hub.publish("leads", event(i + 1, type), { key: "l1" });
        }
        await all.waitFor((f) =>
          f.type === "message" && (f.data as { event_type: string }).event_type === "email_replied"
        );
        await filtered.waitFor((f) =>
          f.type === "message" && (f.data as { event_type: string }).event_type === "email_replied"
        );
        assert.deepEqual(typesOf(all.messages("leads")), types);
        assert.deepEqual(typesOf(filtered.messages("leads")), ["status_changed", "email_replied"]);
      } finally {
        await Promise.all([filtered.close(), all.close()]);
      }
    });

    await t.step("a since resume replays only the filtered types, in order", async () => {
      const c = await TestClient.connect(a, operator);
      try {
        const answers = await subscribe(c, {
          topics: ["leads:l1"],
          since: before,
          types: ["note_added", "lead_created"],
        }, 1);
        assert.equal(answers[0]!.recovered, true);
        await c.waitFor((f) =>
          f.type === "message" && (f.data as { event_type: string }).event_type === "note_added"
        );
        assert.deepEqual(typesOf(c.messages("leads")), ["lead_created", "note_added"]);
        // Then live, still filtered.
        await a.hub.publish("leads", event(5, "email_replied"), { key: "l1" });
        await a.hub.publish("leads", event(6, "note_added"), { key: "l1" });
        await c.waitFor((f) => f.type === "message" && (f.data as { id: string }).id.endsWith("6"));
        assert.deepEqual(typesOf(c.messages("leads")), [
          "lead_created",
          "note_added",
          "note_added",
        ]);
      } finally {
        await c.close();
      }
    });

    await t.step(
      "an unknown type is refused with unknown-event-type and nothing is subscribed",
      async () => {
        const c = await TestClient.connect(a, operator);
        try {
          const answers = await subscribe(c, {
            topics: ["leads", "broadcast"],
            types: ["status_changed", "email_opend"],
          }, 1);
          assert.deepEqual(answers.map((f) => [f.type, f.code]), [["error", "unknown-event-type"]]);
          assert.match(answers[0]!.message as string, /"email_opend"; known: .*email_opened/);
          const noLeads = await subscribe(c, { topics: ["tasks"], types: ["note_added"] }, 1);
          assert.deepEqual(noLeads.map((f) => [f.type, f.code]), [["error", "bad-frame"]]);
          assert.match(noLeads[0]!.message as string, /types filters the leads topic/);
          // Neither frame subscribed anything: a leads message published before a
          // broadcast one (same channel, delivered in order) never arrives.
          await c.subscribe(["broadcast"]);
          await a.hub.publish("leads", event(7, "status_changed"), { key: "l1" });
          await a.hub.publish("broadcast", { hello: 1 });
          await c.waitFor((f) => f.type === "message" && f.topic === "broadcast");
          assert.deepEqual(c.messages("leads"), []);
          assert.deepEqual(c.messages("tasks"), []);
        } finally {
          await c.close();
        }
      },
    );

    await t.step("a later subscribe naming leads without types receives every type", async () => {
      const c = await TestClient.connect(a, operator);
      try {
        await subscribe(c, { topics: ["leads"], types: ["email_replied"] }, 1);
        await a.hub.publish("leads", event(8, "note_added"), { key: "l1" });
        await a.hub.publish("leads", event(9, "email_replied"), { key: "l1" });
        await c.waitFor((f) => f.type === "message" && (f.data as { id: string }).id.endsWith("9"));
        await c.subscribe(["leads"]);
        await a.hub.publish("leads", event(10, "note_added"), { key: "l1" });
        await c.waitFor((f) =>
          f.type === "message" && (f.data as { id: string }).id.endsWith("10")
        );
        assert.deepEqual(typesOf(c.messages("leads")), ["email_replied", "note_added"]);
      } finally {
        await c.close();
      }
    });

    await t.step("?types= on the upgrade filters the ?topics= leads subscription", async () => {
      const q = "topics=leads&types=appointment_booked";
      const ws = new WebSocket(`ws://127.0.0.1:${a.port}/v1/ws?${q}`, ["bearer", operator]);
      const frames: Frame[] = [];
      ws.onmessage = (e) => frames.push(JSON.parse(e.data as string));
      const closed = new Promise((r) => ws.onclose = r);
      try {
        const until = (match: (f: Frame) => boolean) =>
          waitUntil(() => frames.some(match), {
            timeoutMs: 3000,
            everyMs: 10,
            what: "a matching frame",
            detail: () => JSON.stringify(frames),
          });
        await until((f) => f.type === "subscribed" && f.topic === "leads");
        await a.hub.publish("leads", event(11, "note_added"), { key: "l1" });
        await a.hub.publish("leads", event(12, "appointment_booked"), { key: "l1" });
        // note_added went out first: had the filter let it through, it would be here by now.
        await until((f) =>
          f.type === "message" &&
          (f.data as { event_type: string }).event_type === "appointment_booked"
        );
        assert.deepEqual(typesOf(frames.filter((f) => f.type === "message")), [
          "appointment_booked",
        ]);
      } finally {
        ws.close();
        await closed;
      }
      // Refused before any upgrade: an unknown type, or types without a leads topic.
      const bad = await fetch(`${a.url}/v1/ws?topics=leads&types=lead_created,bogus`, {
        headers: { Authorization: `Bearer ${operator}`, Upgrade: "websocket" },
      });
      assert.equal(bad.status, 400);
      const problem = await bad.json();
      assert.equal(problem.code, "unknown-event-type");
      assert.match(problem.detail, /"bogus"/);
      const alone = await fetch(`${a.url}/v1/ws?topics=tasks&types=lead_created`, {
        headers: { Authorization: `Bearer ${operator}`, Upgrade: "websocket" },
      });
      assert.equal(alone.status, 400);
      assert.equal((await alone.json()).code, "invalid-request");
    });
  },
});
