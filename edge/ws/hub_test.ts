import assert from "node:assert/strict";
import {
  assertThrottledAfterThree,
  THREE_ANONYMOUS_RATE_LIMITS,
} from "../../testing/route_harness.ts";
import { useTestStack } from "../../testing/stack.ts";
import { compareOffsets } from "../../shared/ws/topics.ts";
import {
  rawUpgrade,
  startInstance,
  startPair,
  TestClient,
  token,
} from "../../testing/live_feed.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously (the aborted fetch's body
// settles a tick later), and the stack's deps hold a Neon Pool.
const opts = noSanitizers;

Deno.test({
  name: "live feed across two instances",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const deps = [stack.makeDeps(), stack.makeDeps()] as const;
    const auth = deps[0].config.auth;
    const admin = await token(auth, "root", { roles: ["admin"] });
    const viewer = await token(auth, "vera", { roles: ["viewer"] });
    const minerva = await token(auth, "sa:minerva");

    const broadcast = (port: number, body: unknown) =>
      fetch(`http://127.0.0.1:${port}/v1/ws/broadcast`, {
        method: "POST",
        headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });

    await t.step(
      "a broadcast from either instance reaches every client exactly once, in order",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a, b] = pair;
        const clients = await Promise.all([
          TestClient.connect(a, viewer, { via: "protocol" }),
          TestClient.connect(a, admin, { via: "query" }),
          TestClient.connect(a, minerva, { via: "header" }),
          TestClient.connect(b, viewer),
          TestClient.connect(b, admin, { via: "query" }),
          TestClient.connect(b, minerva, { via: "header", topics: ["broadcast"] }),
        ]);
        try {
          assert.equal(clients[0]!.ws.protocol, "bearer");
          for (const c of clients.slice(0, 5)) {
            const [answer] = await c.subscribe(["broadcast"]);
            assert.equal(answer!.type, "subscribed");
          }
          await clients[5]!.waitFor((f) => f.type === "subscribed");
          const offsets: string[] = [];
          // Sequential publishes from alternating instances: one global order.
          for (let n = 0; n < 30; n++) {
            const res = await broadcast(n % 2 ? a.port : b.port, { data: { n } });
            assert.equal(res.status, 202);
            offsets.push((await res.json()).offset);
          }
          // Concurrent ones: Redis decides the order, every client sees that order.
          const concurrent = await Promise.all(
            Array.from(
              { length: 30 },
              (_, i) => (i % 2 ? a : b).hub.publish("broadcast", { n: 30 + i }),
            ),
          );
          offsets.push(
            ...concurrent.map((p) => p.offset).sort(compareOffsets),
          );
          for (const c of clients) {
            await waitUntil(() => c.messages("broadcast").length >= 60, {
              what: "60 broadcasts",
              detail: () => `${c.messages().length}`,
            });
            await new Promise((r) => setTimeout(r, 50)); // nothing extra may follow
            const got = c.messages("broadcast");
            assert.deepEqual(got.map((m) => m.offset), offsets);
            assert.deepEqual(got.slice(0, 30).map((m) => (m.data as { n: number }).n), [
              ...Array(30).keys(),
            ]);
          }
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
      },
    );

    await t.step(
      "targeted messages reach that user or that client, on whichever instance",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a, b] = pair;
        const vera = await token(auth, "vera", { roles: ["viewer"] });
        const other = await token(auth, "otto", { roles: ["operator"] });
        const clients = await Promise.all([
          TestClient.connect(a, vera, { topics: ["broadcast"] }),
          TestClient.connect(b, vera, { topics: ["broadcast"] }),
          TestClient.connect(b, other, { topics: ["broadcast"] }),
        ]);
        try {
          for (const c of clients) await c.waitFor((f) => f.type === "subscribed");
          const [veraA, veraB, otto] = clients as [TestClient, TestClient, TestClient];
          assert.equal(
            (await broadcast(a.port, { data: "to vera", target: { user: "vera" } })).status,
            202,
          );
          assert.equal(
            (await broadcast(a.port, { data: "to one socket", target: { client: veraB.clientId } }))
              .status,
            202,
          );
          await a.hub.publish("broadcast", "to all");
          for (const c of clients) {
            await c.waitFor((f) => f.data === "to all", "the last broadcast");
          }
          const texts = (c: TestClient) => c.messages().map((m) => m.data);
          assert.deepEqual(texts(veraA), ["to vera", "to all"]);
          assert.deepEqual(texts(veraB), ["to vera", "to one socket", "to all"]);
          assert.deepEqual(texts(otto), ["to all"]);
          const bad = await broadcast(a.port, { data: 1, target: {} });
          assert.equal(bad.status, 400);
          await bad.body?.cancel();
        } finally {
          await Promise.all(clients.map((c) => c.close()));
        }
      },
    );

    await t.step("tasks:<id> follows one task; tasks follows all of them", async () => {
      await using pair = await startPair([deps[0], deps[1]]);
      const [a, b] = pair;
      const one = await TestClient.connect(a, viewer);
      const all = await TestClient.connect(b, minerva);
      try {
        await one.subscribe(["tasks:t1"]);
        await all.subscribe(["tasks", "tasks:t1"]);
        for (const id of ["t1", "t2", "t1"]) await b.hub.publish("tasks", { id }, { key: id });
        await all.waitFor(() => all.messages().length === 3);
        await one.waitFor(() => one.messages().length === 2);
        assert.deepEqual(one.messages().map((m) => m.key), ["t1", "t1"]);
        // Following the topic and a key of it still gives each message once.
        assert.deepEqual(all.messages().map((m) => m.key), ["t1", "t2", "t1"]);
        one.send({ type: "unsubscribe", topics: ["tasks:t1"] });
        await one.waitFor((f) => f.type === "unsubscribed");
        await b.hub.publish("tasks", { id: "t1" }, { key: "t1" });
        await all.waitFor(() => all.messages().length === 4);
        assert.equal(one.messages().length, 2);
      } finally {
        await Promise.all([one.close(), all.close()]);
      }
    });

    await t.step(
      "authentication and authorization fail before the upgrade: no socket",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a] = pair;
        const expired = await token(auth, "vera", { roles: ["viewer"], expiredMs: 60_000 });
        const cases: [string, Record<string, string>, number, string][] = [
          ["/v1/ws", {}, 401, "missing-token"],
          ["/v1/ws", { "Sec-WebSocket-Protocol": "bearer, not.a.jwt" }, 401, "invalid-token"],
          [`/v1/ws?access_token=${expired}`, {}, 401, "invalid-token"],
          ["/v1/ws", { Authorization: "Bearer x" }, 401, "invalid-token"],
          [`/v1/ws?access_token=${viewer}&topics=tasks,dlq`, {}, 403, "forbidden"],
          [`/v1/ws?access_token=${viewer}&topics=nope`, {}, 400, "unknown-topic"],
        ];
        for (const [path, headers, status, code] of cases) {
          const peer = await rawUpgrade(a.port, path, headers);
          try {
            assert.equal(peer.status, status, `${path} ${JSON.stringify(headers)}: ${peer.head}`);
            assert.match(peer.head, new RegExp(`content-type: application/problem\\+json`, "i"));
            if (status === 401) assert.match(peer.head, /www-authenticate: Bearer realm=/i);
            assert.match(await peer.body(), new RegExp(`"code":"${code}"`));
          } finally {
            peer.close();
          }
        }
        const plain = await fetch(`${a.url}/v1/ws`, {
          headers: { Authorization: `Bearer ${viewer}` },
        });
        assert.equal(plain.status, 426);
        assert.equal((await plain.json()).code, "upgrade-required");
        // The browser API sees a failed handshake: error, then close, never open.
        const ws = new WebSocket(`ws://127.0.0.1:${a.port}/v1/ws`, ["bearer", "x.y.z"]);
        let opened = false;
        ws.onopen = () => opened = true;
        await new Promise((r) => ws.onclose = r);
        assert.equal(opened, false);
        assert.equal(a.hub.metrics.accepted, 0);
      },
    );

    await t.step(
      "GET /v1/ws/clients lists the clients of every instance, for admins only",
      async () => {
        await using pair = await startPair([deps[0], deps[1]]);
        const [a, b] = pair;
        const c1 = await TestClient.connect(a, viewer);
        const c2 = await TestClient.connect(b, minerva);
        try {
          const get = (tok: string) =>
            fetch(`${a.url}/v1/ws/clients`, { headers: { Authorization: `Bearer ${tok}` } });
          let listed: { id: string; instance: string; user: string }[] = [];
          await waitUntil(async () => {
            const body = await (await get(admin)).json();
            listed = body.data.filter((x: { id: string }) =>
              [c1.clientId, c2.clientId].includes(x.id)
            );
            return listed.length === 2;
          }, { what: "both clients registered" });
          assert.deepEqual(
            listed.map((x) => [x.instance, x.user]).sort(),
            [["A", "vera"], ["B", "sa:minerva"]],
          );
          const denied = await get(viewer);
          assert.equal(denied.status, 403);
          await denied.body?.cancel();
          await c1.close();
          await waitUntil(async () => {
            const body = await (await get(admin)).json();
            return !body.data.some((x: { id: string }) => x.id === c1.clientId);
          }, { what: "the closed client to be unregistered" });
          const schema = await fetch(`${a.url}/v1/ws/schema`, {
            headers: { Authorization: `Bearer ${viewer}` },
          });
          assert.equal(schema.status, 200);
          assert.equal((await schema.json()).$defs.client.oneOf.length, 4);
        } finally {
          await Promise.all([c1.close(), c2.close()]);
        }
      },
    );
  },
});

Deno.test({
  name:
    "failed WebSocket authentications are rate-limited by client IP; a valid token still connects",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps({
      RATE_LIMITS: THREE_ANONYMOUS_RATE_LIMITS,
    });
    await using instance = await startInstance(deps, {
      namespace: testNamespace(),
      instanceId: "limits",
    });
    // Every caller here is 127.0.0.1, which other suites on the shared stack
    // may also have charged: assert the shape (401s, then only 429s, by the
    // 4th attempt at the latest).
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const peer = await rawUpgrade(instance.port, "/v1/ws", {
        "Sec-WebSocket-Protocol": `bearer, guess.${i}.x`,
      });
      try {
        statuses.push(peer.status);
        if (peer.status === 429) assert.match(peer.head, /retry-after: \d+/i);
      } finally {
        peer.close();
      }
    }
    assertThrottledAfterThree(statuses, 401);
    // A valid token still opens a socket from the same, spent IP: authenticated
    // upgrades are not charged to the anonymous budget (nor to the principal).
    const valid = await token(deps.config.auth, "sa:minerva");
    const client = await TestClient.connect(instance, valid);
    await client.close();
  },
});
