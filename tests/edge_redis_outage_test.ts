import assert from "node:assert/strict";
import { settingsToEnv, startStack } from "../dev/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { TestClient, token } from "../testing/live_feed.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess } from "../testing/process.ts";
import { startFaultProxy } from "../dev/chaos/fault_proxy.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

/** One task enqueue with its own Idempotency-Key; a refused connection counts as status 0. */
async function enqueue(url: string, bearer: string, key: string): Promise<Response | null> {
  try {
    return await fetch(`${url}/v1/tasks`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${bearer}`,
        "content-type": "application/json",
        "idempotency-key": key,
      },
      body: JSON.stringify({ type: "noop", payload: { echo: key } }),
    });
  } catch {
    return null;
  }
}

interface Outage {
  /** Takes Redis away from the edge. */
  begin(): Promise<void>;
  /** Gives it back. */
  end(): Promise<void>;
}

/**
 * An edge with a live-feed socket and a stream of enqueues loses Redis: it must stay up, answer
 * 503 with Retry-After, and serve again once Redis is back.
 */
async function outageScenario(
  env: Record<string, string>,
  outage: Outage,
  minRefusals: number,
): Promise<void> {
  const auth = parseConfig(env).auth;
  const edge = new AppProcess("edge/main.ts", env);
  let client: TestClient | undefined;
  let exited = false;
  void edge.finished().then(() => exited = true);
  try {
    const { url } = await edge.waitForLog("edge listening") as { url: string };
    const port = Number(new URL(url).port);
    const viewer = await token(auth, "vera", { roles: ["viewer"] });
    client = await TestClient.connect({ port }, viewer, { topics: ["broadcast"] });
    await client.waitFor((f) => f.type === "subscribed");
    const writer = await token(auth, "sa:minerva");
    const first = await enqueue(url, writer, crypto.randomUUID());
    assert.equal(first?.status, 202, await first?.text() ?? "no answer");

    await outage.begin();
    const statuses: number[] = [];
    let n = 0;
    // Enqueues while Redis is away, until the edge noticed its lost streams (the paths that
    // crashed it before) and refused enough of them.
    await waitUntil(async () => {
      const res = await enqueue(url, writer, `outage-${n++}-${crypto.randomUUID()}`);
      if (res === null) {
        statuses.push(0);
      } else {
        statuses.push(res.status);
        if (res.status === 503) {
          assert.ok(res.headers.has("retry-after"), "503 without Retry-After");
        }
        await res.body?.cancel();
      }
      return exited || statuses.filter((s) => s === 503).length >= minRefusals &&
          edge.logsWith("live feed stream lost: resubscribing").length > 0;
    }, {
      timeoutMs: 90_000,
      everyMs: 50,
      what: `${minRefusals} answers 503 and the lost stream noticed while Redis is away`,
      detail: () => `exited ${exited}; statuses ${statuses.join(",")}`,
    });
    if (exited) assert.fail(`edge exited while Redis was away: ${await edge.stderr}`);
    assert.ok(statuses.every((s) => s === 503), `not 503: ${statuses.join(",")}`);

    await outage.end();
    await waitUntil(async () => {
      const res = await enqueue(url, writer, crypto.randomUUID());
      await res?.body?.cancel();
      return exited || res?.status === 202;
    }, { timeoutMs: 60_000, everyMs: 200, what: "a 202 after Redis came back" });
    if (exited) assert.fail(`edge exited after Redis came back: ${await edge.stderr}`);
    const stopped = await edge.stop("SIGTERM");
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.doesNotMatch(stopped.stderr, /Uncaught/);
  } finally {
    await client?.close();
    await edge.kill();
  }
}

Deno.test({
  name: "redis-server stopped under an edge with a live-feed socket and enqueues: the edge " +
    "stays up, answers 503 with Retry-After, and serves again once Redis is back",
  // The WebSocket client's socket closes asynchronously after the process exits.
  ...noSanitizers,
}, async () => {
  // A private stack: this test takes its Redis away.
  await using stack = await startStack();
  const env = { ...settingsToEnv(stack.settings), APP_ENV: "test", EDGE_PORT: "0" };
  const redisServer = stack.redisServer!;
  await outageScenario(env, {
    begin: () => redisServer.stop(),
    end: () => redisServer.restart(),
  }, 100);
});

Deno.test({
  name: "connections to Redis reset (fault proxy) under an edge with a live-feed socket and " +
    "enqueues: the edge stays up, answers 503 with Retry-After, and serves again after",
  ...noSanitizers,
}, async () => {
  await using stack = await startStack();
  const base = settingsToEnv(stack.settings);
  await using proxy = await startFaultProxy({
    upstreamPort: Number(new URL(base.UPSTASH_REDIS_REST_URL!).port),
  });
  const env = {
    ...base,
    APP_ENV: "test",
    EDGE_PORT: "0",
    UPSTASH_REDIS_REST_URL: `http://127.0.0.1:${proxy.port}`,
  };
  await outageScenario(env, {
    begin: () => Promise.resolve(proxy.setFault({ kind: "reset" })),
    end: () => Promise.resolve(proxy.setFault({ kind: "pass" })),
  }, 100);
});
