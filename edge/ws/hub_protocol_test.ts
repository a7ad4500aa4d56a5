import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { mutableSubscriptions } from "../../testing/mutable_subscriptions.ts";
import { startInstance, startPair, TestClient, token } from "../../testing/live_feed.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously (the aborted fetch's body
// settles a tick later), and the stack's deps hold a Neon Pool.
const opts = noSanitizers;

Deno.test({
  name: "live feed protocol",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = [stack.makeDeps(), stack.makeDeps()] as const;
    const auth = deps[0].config.auth;
    const viewer = await token(auth, "vera", { roles: ["viewer"] });
    const admin = await token(auth, "root", { roles: ["admin"] });
    const minerva = await token(auth, "sa:minerva");

    await t.step(
      "topics are authorised one by one: dlq is an error frame for a viewer",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a] = pair;
        const v = await TestClient.connect(a, viewer);
        const ad = await TestClient.connect(a, admin);
        const sa = await TestClient.connect(a, minerva);
        try {
          const answers = await v.subscribe(["dlq", "tasks", "breakers", "bogus"]);
          assert.deepEqual(
            answers.map((f) => [f.topic, f.type, f.code ?? null]),
            [
              ["dlq", "error", "forbidden-topic"],
              // Breaker states are for every dashboard role (the console's viewers).
              ["breakers", "subscribed", null],
              ["bogus", "error", "unknown-topic"],
              ["tasks", "subscribed", null],
            ].sort((x, y) =>
              answers.findIndex((f) => f.topic === x[0]) -
              answers.findIndex((f) => f.topic === y[0])
            ),
          );
          assert.deepEqual((await ad.subscribe(["dlq", "breakers"])).map((f) => f.type), [
            "subscribed",
            "subscribed",
          ]);
          assert.deepEqual((await sa.subscribe(["dlq"])).map((f) => f.type), ["subscribed"]);
          await a.hub.publish("dlq", { event: "dead", id: "t1" });
          await ad.waitFor((f) => f.type === "message" && f.topic === "dlq");
          await sa.waitFor((f) => f.type === "message" && f.topic === "dlq");
          assert.equal(v.messages().length, 0);
        } finally {
          await Promise.all([v.close(), ad.close(), sa.close()]);
        }
      },
    );

    await t.step(
      "tasks and leads only for principals the API lets read tasks and leads",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a] = pair;
        // Authenticated, allowed on /v1/ws, but GET /v1/tasks/* and /v1/leads/* deny them.
        const noRoles = await TestClient.connect(a, await token(auth, "nobody"));
        const otherService = await TestClient.connect(a, await token(auth, "sa:billing"));
        try {
          for (const c of [noRoles, otherService]) {
            const answers = await c.subscribe(["tasks", "leads:l1", "broadcast"]);
            assert.deepEqual(
              answers.map((f) => [f.topic, f.type, f.code ?? null]),
              [
                ["tasks", "error", "forbidden-topic"],
                ["leads:l1", "error", "forbidden-topic"],
                ["broadcast", "subscribed", null],
              ],
            );
          }
          // The same at the handshake: a forbidden ?topics= is a 403, no socket.
          const nobody = await token(auth, "nobody");
          const res = await fetch(`${a.url}/v1/ws?topics=leads&access_token=${nobody}`, {
            headers: { Upgrade: "websocket" },
          });
          assert.equal(res.status, 403);
          assert.equal((await res.json()).code, "forbidden");
        } finally {
          await Promise.all([noRoles.close(), otherService.close()]);
        }
      },
    );

    await t.step("malformed frames get error frames; repeated abuse closes with 1008", async () => {
      await using pair = await startPair([deps[0], deps[1]], {
        maxViolations: 6,
        maxFrameBytes: 1024,
      });
      const [a] = pair;
      const c = await TestClient.connect(a, viewer);
      try {
        c.send({ type: "ping", id: "p1" });
        assert.equal((await c.waitFor((f) => f.type === "pong")).id, "p1");
        const bad: [string | Uint8Array, string][] = [
          ["{not json", "bad-json"],
          ['{"type":"shout"}', "unknown-type"],
          ['{"type":"subscribe","topics":"tasks"}', "bad-frame"],
          [JSON.stringify({ type: "ping", id: "x".repeat(2000) }), "frame-too-large"],
          [new Uint8Array([1, 2, 3]), "binary-not-supported"],
        ];
        for (const [frame, code] of bad) {
          const seen = c.frames.length;
          c.ws.send(frame);
          await c.waitFor((f) => c.frames.indexOf(f) >= seen && f.type === "error", code);
          assert.equal(c.frames.at(-1)!.code, code);
        }
        // Still open and served after five violations.
        c.send({ type: "ping" });
        await c.waitFor((f) => f.type === "pong" && f.id === undefined);
        c.send("[]");
        const closed = await c.closed;
        assert.equal(closed.code, 1008);
        assert.ok(a.hub.metrics.violations >= 6);
      } finally {
        await c.close();
      }
    });

    await t.step(
      "an expired token gets a reauth request; a fresh token keeps the socket, none closes it with 4001",
      async () => {
        // A grace long enough for the keeper's reauth to be verified on a loaded machine
        // (at 200 ms a full parallel suite closed it with 4001 before its answer).
        await using pair = await startPair([deps[0], deps[1]], { reauthGraceMs: 1000 });
        const [a, b] = pair;
        const expiring = () => token(auth, "vera", { roles: ["viewer"], expiredMs: 10 });
        const keeper = await TestClient.connect(a, await expiring(), { topics: ["broadcast"] });
        const idle = await TestClient.connect(a, await expiring());
        const wrong = await TestClient.connect(b, await expiring());
        const impostor = await TestClient.connect(b, await expiring());
        try {
          for (const c of [keeper, idle, wrong, impostor]) {
            await c.waitFor((f) => f.type === "reauth");
          }
          keeper.send({ type: "reauth", token: viewer });
          const reauthed = await keeper.waitFor((f) => f.type === "reauthed");
          assert.ok(Date.parse(reauthed.expires_at as string) > Date.now());
          wrong.send({ type: "reauth", token: "a.b.c" });
          assert.equal((await wrong.waitFor((f) => f.type === "error")).code, "invalid-token");
          impostor.send({ type: "reauth", token: admin });
          assert.equal((await impostor.closed).code, 4003);
          assert.equal((await idle.closed).code, 4001);
          assert.equal((await wrong.closed).code, 4001);
          assert.equal(keeper.closeEvent, null);
          await b.hub.publish("broadcast", "still here");
          await keeper.waitFor((f) => f.data === "still here");
          assert.equal(a.hub.metrics.expiredCloses, 1);
        } finally {
          await Promise.all([keeper, idle, wrong, impostor].map((c) => c.close()));
        }
      },
    );

    await t.step(
      "reconnecting with since replays what was missed, in order, then live: recovered true",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a, b] = pair;
        const first = await TestClient.connect(a, viewer);
        await first.subscribe(["leads"]);
        for (let n = 0; n < 5; n++) await a.hub.publish("leads", { n });
        await first.waitFor(() => first.messages().length === 5);
        const last = first.messages().at(-1)!.offset as string;
        await first.close();
        for (let n = 5; n < 10; n++) await b.hub.publish("leads", { n });
        // Publishing goes on while the second socket subscribes.
        let n = 10;
        let publishing = true;
        const load = (async () => {
          while (publishing) await a.hub.publish("leads", { n: n++ });
        })();
        const second = await TestClient.connect(b, viewer);
        try {
          const [answer] = await second.subscribe(["leads"], last);
          assert.equal(answer!.recovered, true);
          await waitUntil(() => second.messages().length >= 30, { what: "30 messages" });
          publishing = false;
          await load;
          await waitUntil(() => second.messages().length === n - 5, {
            what: `${n - 5} messages`,
            detail: () => `${second.messages().length}`,
          });
          assert.deepEqual(
            second.messages().map((m) => (m.data as { n: number }).n),
            [...Array(n).keys()].slice(5),
          );
          // The subscribed frame comes before the replay.
          assert.ok(second.frames.indexOf(answer!) < second.frames.indexOf(second.messages()[0]!));
        } finally {
          publishing = false;
          await load;
          await second.close();
        }
      },
    );

    await t.step(
      "since older than the history: recovered false, no replay, then live messages",
      async () => {
        await using pair = await startPair([deps[0], deps[1]], { historyMaxLen: 5 });
        const [a, b] = pair;
        const first = await a.hub.publish("broadcast", { n: 0 });
        for (let n = 1; n < 20; n++) await a.hub.publish("broadcast", { n });
        const c = await TestClient.connect(b, viewer);
        try {
          const [answer] = await c.subscribe(["broadcast"], { broadcast: first.offset });
          assert.equal(answer!.recovered, false);
          await a.hub.publish("broadcast", { n: 20 });
          await c.waitFor((f) => f.type === "message");
          assert.deepEqual(c.messages().map((m) => (m.data as { n: number }).n), [20]);
          // Without since: no replay either, and recovered is false.
          const [plain] = await c.subscribe(["tasks"]);
          assert.deepEqual([plain!.type, plain!.recovered], ["subscribed", false]);
        } finally {
          await c.close();
        }
      },
    );

    await t.step(
      "an instance whose stream died longer than the history tells its sockets to reload",
      async () => {
        const namespace = testNamespace();
        const mutable = mutableSubscriptions(deps[0].redis);
        await using a = await startInstance(deps[0], {
          namespace,
          instanceId: "A",
          redis: mutable.redis,
          historyMaxLen: 3,
        });
        await using b = await startInstance(deps[1], {
          namespace,
          instanceId: "B",
          historyMaxLen: 3,
        });
        const c = await TestClient.connect(a, viewer, { topics: ["leads"] });
        try {
          await c.waitFor((f) => f.type === "subscribed");
          mutable.silenceStreams();
          for (let n = 0; n < 10; n++) await b.hub.publish("leads", { n });
          const reload = await c.waitFor((f) =>
            f.type === "subscribed" && f.recovered === false &&
            c.frames.indexOf(f) > 1, "the reload notice");
          assert.equal(reload.topic, "leads");
          // What the history still had follows, then live messages.
          await b.hub.publish("leads", { n: 10 });
          await c.waitFor((f) => (f.data as { n?: number } | undefined)?.n === 10);
          assert.deepEqual(c.messages().map((m) => (m.data as { n: number }).n), [7, 8, 9, 10]);
          assert.ok(a.hub.bus.metrics.gaps >= 1);
        } finally {
          await c.close();
        }
      },
    );
  },
});
