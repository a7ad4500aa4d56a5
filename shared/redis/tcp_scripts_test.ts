import assert from "node:assert/strict";
import { redisCommand, RedisServer } from "../../dev/redis_server.ts";
import { startFaultProxy } from "../../dev/chaos/fault_proxy.ts";
import { startUpstashBridge } from "../../dev/upstash_bridge.ts";
import { createRedis } from "../deps.ts";
import { createQueue } from "../queue/queue.ts";
import { claim } from "../queue/leases.ts";
import { TEST_CATALOG } from "../../testing/queue.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { bindScript } from "./scripts.ts";
import { RedisTcpUnavailableError, sameRedis, TcpScriptTransport } from "./tcp_scripts.ts";

/** A private redis-server (stopped and restarted by some cases) and its TCP URL. */
async function withRedis(fn: (server: RedisServer) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "pcs-tcp-scripts-" });
  const server = await RedisServer.start({ dir });
  try {
    await fn(server);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The REST path to `server`: a bridge and an Upstash client on it. */
async function withRest(
  server: RedisServer,
  fn: (rest: ReturnType<typeof createRedis>) => Promise<void>,
): Promise<void> {
  const token = "t";
  const bridge = await startUpstashBridge({
    redisPort: server.port,
    redisPassword: server.password,
    token,
  });
  try {
    await fn(createRedis({ url: bridge.url, token }));
  } finally {
    await bridge.close();
  }
}

// Every reply shape a queue script returns: integers, strings, nil (Lua
// false), nested arrays, and an empty array.
const SHAPES = `
redis.call("SET", KEYS[1], ARGV[1])
return {42, redis.call("GET", KEYS[1]), false, {7, "x", {}}, "12"}
`;

Deno.test("a script over TCP answers exactly what the REST path answers", async () => {
  await withRedis((server) =>
    withRest(server, async (redis) => {
      const tcp = new TcpScriptTransport({ url: server.url });
      try {
        const rest = bindScript(redis, SHAPES);
        const direct = bindScript(tcp, SHAPES);
        const viaRest = await rest.run(["k:rest"], ["héllo {json}"]);
        const viaTcp = await direct.run(["k:tcp"], ["héllo {json}"]);
        assert.deepEqual(viaTcp, viaRest);
        assert.deepEqual(viaTcp, [42, "héllo {json}", null, [7, "x", []], "12"]);
      } finally {
        await tcp.close();
      }
    })
  );
});

Deno.test("a flushed script cache is refilled (EVAL on NOSCRIPT); a script error rejects as itself", async () => {
  await withRedis(async (server) => {
    const tcp = new TcpScriptTransport({ url: server.url });
    try {
      const script = bindScript(tcp, "return ARGV[1] .. '!'");
      assert.equal(await script.run([], ["a"]), "a!");
      // A restart empties the script cache (as SCRIPT FLUSH or a failover does).
      await server.stop();
      await server.restart();
      // The connection died with the server: the call reconnects (at once, or
      // after one call that fails fast), finds no script and sends the source.
      const again = await script.run([], ["b"]).catch((err) => {
        assert.ok(err instanceof RedisTcpUnavailableError, String(err));
        return script.run([], ["b"]);
      });
      assert.equal(again, "b!");
      assert.match(
        await redisCommand(server.port, server.password, "INFO commandstats"),
        /cmdstat_eval:calls=1,/,
      );
      const failing = bindScript(tcp, "return redis.error_reply('QUEUE boom')");
      await assert.rejects(failing.run([], []), (err: Error) => {
        assert.ok(!(err instanceof RedisTcpUnavailableError));
        assert.match(err.message, /boom/);
        return true;
      });
      assert.equal(await tcp.ping(), "PONG");
    } finally {
      await tcp.close();
    }
  });
});

Deno.test("while Redis is down calls fail at once; after the restart they succeed", async () => {
  await withRedis(async (server) => {
    const tcp = new TcpScriptTransport({ url: server.url, connectTimeoutMs: 500 });
    try {
      const script = bindScript(tcp, "return 1");
      assert.equal(await script.run([], []), 1);
      await server.stop();
      const started = performance.now();
      await assert.rejects(script.run([], []), RedisTcpUnavailableError);
      await assert.rejects(script.run([], []), RedisTcpUnavailableError);
      await assert.rejects(tcp.ping(), RedisTcpUnavailableError);
      // No offline queue and no reconnect loop: nothing waits for Redis.
      assert.ok(performance.now() - started < 2000);
      await server.restart();
      assert.equal(await script.run([], []), 1);
    } finally {
      await tcp.close();
    }
  });
});

Deno.test("a silent connection is given up after commandTimeoutMs; the next call reconnects", async () => {
  await withRedis(async (server) => {
    await using proxy = await startFaultProxy({ upstreamPort: server.port });
    const url = new URL(server.url);
    url.port = String(proxy.port);
    const tcp = new TcpScriptTransport({ url: url.href, commandTimeoutMs: 300 });
    try {
      const script = bindScript(tcp, "return 'ok'");
      assert.equal(await script.run([], []), "ok");
      proxy.setFault({ kind: "blackhole" });
      await assert.rejects(script.run([], []), RedisTcpUnavailableError);
      proxy.setFault({ kind: "pass" });
      assert.equal(await script.run([], []), "ok");
    } finally {
      await tcp.close();
    }
  });
});

Deno.test("a queue on TCP and one on REST share the same tasks", async () => {
  await withRedis((server) =>
    withRest(server, async (redis) => {
      const tcp = new TcpScriptTransport({ url: server.url });
      try {
        const namespace = testNamespace("tcp");
        const edge = createQueue(redis, TEST_CATALOG, { namespace });
        const worker = createQueue(redis, TEST_CATALOG, { namespace }, tcp);
        const { id } = await edge.enqueue("echo", { n: 1 });
        const claimed = await claim(worker.ctx, { max: 5, leaseMs: 30_000, workerId: "w1" });
        assert.deepEqual(claimed.tasks.map((t) => t.id), [id]);
        assert.equal((await edge.getTask(id))?.status, "running");
      } finally {
        await tcp.close();
      }
    })
  );
});

Deno.test("sameRedis tells whether the TCP URL and the REST client reach one Redis", async () => {
  await withRedis(async (server) => {
    await withRedis((other) =>
      withRest(server, async (rest) => {
        const same = new TcpScriptTransport({ url: server.url });
        const elsewhere = new TcpScriptTransport({ url: other.url });
        try {
          assert.equal(await sameRedis(rest, same), true);
          assert.equal(await sameRedis(rest, elsewhere), false);
        } finally {
          await same.close();
          await elsewhere.close();
        }
      })
    );
  });
});

Deno.test("a TCP subscription hears each message, and once that it is gone", async () => {
  await withRedis(async (server) => {
    const tcp = new TcpScriptTransport({ url: server.url });
    const sub = tcp.subscribe("pc:test:notify");
    let messages = 0;
    const gone = Promise.withResolvers<Error>();
    sub.on("message", () => messages++);
    sub.on("error", (err) => gone.resolve(err));
    try {
      const publish = bindScript(tcp, "return redis.call('PUBLISH', KEYS[1], ARGV[1])");
      // Subscribed once a publish reaches one receiver.
      while (await publish.run(["pc:test:notify"], ["x"]) === 0) {
        await new Promise((r) => setTimeout(r, 10));
      }
      await publish.run(["pc:test:notify"], ["y"]);
      while (messages < 2) await new Promise((r) => setTimeout(r, 10));
      await server.stop();
      assert.ok((await gone.promise) instanceof RedisTcpUnavailableError);
      await server.restart();
    } finally {
      await sub.unsubscribe();
      await tcp.close();
    }
  });
});
