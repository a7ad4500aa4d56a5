import assert from "node:assert/strict";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { createRedis } from "../shared/deps.ts";
import { createFeedPublisher } from "../shared/ws/publisher.ts";
import { TestClient, token } from "../testing/live_feed.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

Deno.test({
  name: "redis-server restarted under a steady broadcast stream: after recovery every client " +
    "of two edge processes has every published message, once, in order",
  // The WebSocket clients' sockets close asynchronously after the processes exit.
  ...noSanitizers,
}, async () => {
  // A private stack: this test takes its Redis away.
  await using stack = await startStack();
  const env = { ...settingsToEnv(stack.settings), APP_ENV: "test", EDGE_PORT: "0" };
  const auth = parseConfig(env).auth;
  const edges = [new AppProcess("edge/main.ts", env), new AppProcess("edge/main.ts", env)];
  const clients: TestClient[] = [];
  const publisher = createFeedPublisher({
    redis: createRedis(stack.settings.redis),
    instanceId: "test-publisher",
  });
  let publishing = true;
  let n = 0;
  const published = new Map<number, string>(); // n → offset, for every publish that answered
  const unknown = new Set<number>(); // publishes that failed: may or may not have happened
  const load = (async () => {
    while (publishing) {
      const at = n++;
      try {
        published.set(at, (await publisher.publish("broadcast", { n: at })).offset);
      } catch {
        unknown.add(at);
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  try {
    const ports = await Promise.all(
      edges.map(async (e) =>
        Number(new URL((await e.waitForLog("edge listening")).url as string).port)
      ),
    );
    const vera = await token(auth, "vera", { roles: ["viewer"] });
    for (const port of ports) {
      for (let i = 0; i < 2; i++) {
        clients.push(await TestClient.connect({ port }, vera, { topics: ["broadcast"] }));
      }
    }
    for (const c of clients) await c.waitFor((f) => f.type === "subscribed");
    const firstSeen = (c: TestClient) => (c.messages()[0]?.data as { n: number }).n;
    await waitUntil(() => clients.every((c) => c.messages().length >= 100), {
      timeoutMs: 10_000,
      what: "100 messages per client before the restart",
    });

    const redisServer = stack.redisServer!;
    const before = published.size;
    await redisServer.stop();
    await new Promise((r) => setTimeout(r, 500));
    await redisServer.restart();
    await waitUntil(() => published.size >= before + 300, {
      timeoutMs: 20_000,
      what: "300 publishes after the restart",
    });
    publishing = false;
    await load;
    assert.ok(unknown.size > 0, "the restart did not interrupt the publisher");

    const last = Math.max(...published.keys());
    for (const c of clients) {
      const from = firstSeen(c);
      await waitUntil(() => c.messages().some((m) => (m.data as { n: number }).n === last), {
        timeoutMs: 15_000,
        what: `message ${last}`,
        detail: () => `${c.messages().length} messages`,
      });
      const got = c.messages().map((m) => (m.data as { n: number }).n);
      // Once and in order (publishes are sequential, so n grows with the offset).
      assert.deepEqual(got, [...got].sort((x, y) => x - y));
      assert.equal(new Set(got).size, got.length, "duplicates");
      // Every publish that answered is there; nothing else but the unknown ones.
      const expected = [...published.keys()].filter((k) => k >= from);
      const missing = expected.filter((k) => !got.includes(k));
      assert.deepEqual(missing, [], `missing ${missing.length} of ${expected.length}`);
      assert.ok(got.every((k) => published.has(k) || unknown.has(k)));
    }
    for (const e of edges) {
      assert.ok(e.logsWith("live feed stream lost: resubscribing").length > 0, "stream reopened");
    }
    const stopped = await Promise.all(edges.map((e) => e.stop("SIGTERM")));
    for (const s of stopped) assert.equal(s.code, 0, s.stderr);
  } finally {
    publishing = false;
    await load;
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(edges.map((e) => e.kill()));
  }
});
