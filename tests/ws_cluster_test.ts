import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { compareOffsets } from "../shared/ws/topics.ts";
import { TestClient, token } from "../testing/live_feed.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const RATE_LIMITS = JSON.stringify({
  default: { limit: 1_000_000, window_s: 60 },
  admin: { limit: 1_000_000, window_s: 60 },
  anonymous: { limit: 1_000_000, window_s: 60 },
});

Deno.test({
  name: "two edge processes: broadcasts from either reach every client once, in order; " +
    "targeted messages reach their user or client; SIGTERM closes sockets with 1001",
  // The WebSocket clients' sockets close asynchronously after the processes exit.
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const env = { ...stack.env(), APP_ENV: "test", EDGE_PORT: "0", RATE_LIMITS };
  const auth = parseConfig(env).auth;
  const edges = [new AppProcess("edge/main.ts", env), new AppProcess("edge/main.ts", env)];
  const clients: TestClient[] = [];
  try {
    const urls = await Promise.all(
      edges.map(async (e) => (await e.waitForLog("edge listening")).url as string),
    );
    const ports = urls.map((u) => Number(new URL(u).port));
    const admin = await token(auth, "root", { roles: ["admin"] });
    const vera = await token(auth, "vera", { roles: ["viewer"] });
    const minerva = await token(auth, "sa:minerva");
    for (const port of ports) {
      for (const tok of [admin, vera, minerva]) {
        clients.push(await TestClient.connect({ port }, tok, { topics: ["broadcast"] }));
      }
    }
    for (const c of clients) await c.waitFor((f) => f.type === "subscribed");
    // Messages published before this test's first one (other suites share "pc") are ignored.
    const start = clients.map((c) => c.messages().length);

    const post = async (port: number, body: unknown) => {
      const res = await fetch(`http://127.0.0.1:${port}/v1/ws/broadcast`, {
        method: "POST",
        headers: { Authorization: `Bearer ${admin}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(res.status, 202);
      return (await res.json()).offset as string;
    };
    const run = crypto.randomUUID();
    const offsets: string[] = [];
    for (let n = 0; n < 40; n++) offsets.push(await post(ports[n % 2]!, { data: { run, n } }));
    const concurrent = await Promise.all(
      Array.from({ length: 40 }, (_, i) => post(ports[i % 2]!, { data: { run, n: 40 + i } })),
    );
    offsets.push(...concurrent.sort(compareOffsets));
    const veraOnB = clients[4]!;
    offsets.push(await post(ports[0]!, { data: { run, to: "vera" }, target: { user: "vera" } }));
    await post(ports[0]!, { data: { run, to: "one" }, target: { client: veraOnB.clientId } });

    const mine = (c: TestClient) =>
      c.messages("broadcast").slice(start[clients.indexOf(c)]).filter((m) =>
        (m.data as { run?: string }).run === run
      );
    for (const c of clients) {
      const isVera = c === clients[1] || c === veraOnB;
      const expected = isVera ? 81 + (c === veraOnB ? 1 : 0) : 80;
      await waitUntil(() => mine(c).length >= expected, {
        timeoutMs: 10_000,
        what: `${expected} broadcasts`,
        detail: () => `${mine(c).length}`,
      });
      const got = mine(c);
      assert.equal(got.length, expected);
      assert.deepEqual(got.slice(0, 80).map((m) => m.offset), offsets.slice(0, 80));
      if (isVera) assert.equal((got[80]!.data as { to: string }).to, "vera");
      if (c === veraOnB) assert.equal((got[81]!.data as { to: string }).to, "one");
    }

    const listed = await (await fetch(`${urls[0]}/v1/ws/clients?limit=10000`, {
      headers: { Authorization: `Bearer ${admin}` },
    })).json();
    const ids = new Set(clients.map((c) => c.clientId));
    const ours = listed.data.filter((x: { id: string }) => ids.has(x.id));
    assert.equal(ours.length, 6);
    assert.equal(new Set(ours.map((x: { instance: string }) => x.instance)).size, 2);

    const stopped = await Promise.all(edges.map((e) => e.stop("SIGTERM")));
    for (const s of stopped) assert.equal(s.code, 0, s.stderr);
    for (const c of clients) assert.equal((await c.closed).code, 1001);
  } finally {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(edges.map((e) => e.kill()));
  }
});
