import assert from "node:assert/strict";
import { createPool } from "../shared/db/pool.ts";
import { startNeonProxy } from "./neon_proxy.ts";
import { PostgresServer } from "./postgres_server.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

/** A TCP server that echoes what it reads; `closed` resolves when a client's connection ends. */
function startEchoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const ended = Promise.withResolvers<void>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          for await (const chunk of conn.readable) await conn.write(chunk);
        } catch {
          // closed by the test
        }
        conns.delete(conn);
        ended.resolve();
      })();
    }
  })();
  return {
    address: `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    conns,
    ended: ended.promise,
    async close() {
      listener.close();
      await serving.catch(() => {});
    },
  };
}

/** Opens a raw WebSocket and resolves with it once open (or with the failure event). */
function openWebSocket(url: string) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
  const opened = new Promise<Event>((resolve) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", resolve);
  });
  const nextMessage = () =>
    new Promise<Uint8Array>((resolve) =>
      ws.addEventListener("message", (e) => resolve(new Uint8Array(e.data)), { once: true })
    );
  return { ws, opened, closed, nextMessage };
}

Deno.test("startNeonProxy() answers 404 outside /v1", async () => {
  await using proxy = await startNeonProxy({ allow: ["127.0.0.1:1"] });
  const response = await fetch(`http://127.0.0.1:${proxy.port}/v2?address=127.0.0.1:1`);
  assert.equal(response.status, 404);
  await response.body?.cancel();
});

Deno.test("startNeonProxy() refuses an address outside the allow-list before upgrading", async () => {
  await using proxy = await startNeonProxy({ allow: ["127.0.0.1:1"] });
  const plain = await fetch(`http://${proxy.wsProxy}?address=127.0.0.1:5432`);
  assert.equal(plain.status, 403);
  await plain.body?.cancel();

  const { opened, closed } = openWebSocket(`ws://${proxy.wsProxy}?address=127.0.0.1:5432`);
  const event = await opened;
  assert.equal(event.type, "error");
  assert.match((event as ErrorEvent).message, /403/);
  await closed;
  assert.equal(proxy.openPipes, 0);
});

Deno.test("startNeonProxy() pipes binary frames both ways and closes TCP when the WebSocket closes", async () => {
  const echo = startEchoServer();
  try {
    await using proxy = await startNeonProxy({ allow: [echo.address] });
    const { ws, opened, closed, nextMessage } = openWebSocket(
      `ws://${proxy.wsProxy}?address=${echo.address}`,
    );
    const reply = nextMessage();
    // Sent right after open, typically before the proxy's TCP connect completes.
    assert.equal((await opened).type, "open");
    ws.send(new Uint8Array([1, 2, 3]));
    assert.deepEqual(await reply, new Uint8Array([1, 2, 3]));
    assert.equal(proxy.openPipes, 1);

    ws.close();
    await closed;
    await echo.ended; // the echo server saw EOF
  } finally {
    await echo.close();
  }
});

Deno.test("startNeonProxy() closes the WebSocket when TCP closes, and close() ends live pipes", async () => {
  const echo = startEchoServer();
  try {
    await using proxy = await startNeonProxy({ allow: [echo.address] });
    const first = openWebSocket(`ws://${proxy.wsProxy}?address=${echo.address}`);
    const second = openWebSocket(`ws://${proxy.wsProxy}?address=${echo.address}`);
    await Promise.all([first.opened, second.opened]);
    // A round trip on each, so both TCP connections exist on the echo side.
    for (const client of [first, second]) {
      const reply = client.nextMessage();
      client.ws.send(new Uint8Array([9]));
      await reply;
    }
    assert.equal(echo.conns.size, 2);

    const [serverSide] = echo.conns;
    serverSide!.close();
    const closedByTcp = await Promise.race([first.closed, second.closed]);
    assert.equal(closedByTcp.reason, "TCP connection is closed");

    await proxy.close();
    await Promise.all([first.closed, second.closed]);
    assert.equal(proxy.openPipes, 0);
  } finally {
    await echo.close();
  }
});

Deno.test("startNeonProxy() closes the WebSocket when the destination refuses TCP", async () => {
  const unused = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const address = `127.0.0.1:${(unused.addr as Deno.NetAddr).port}`;
  unused.close();
  await using proxy = await startNeonProxy({ allow: [address] });
  const { ws, closed } = openWebSocket(`ws://${proxy.wsProxy}?address=${address}`);
  ws.addEventListener("open", () => ws.send(new Uint8Array([0])));
  const event = await closed;
  assert.equal(event.reason, "Cannot connect to the database");
  assert.equal(proxy.openPipes, 0);
});

// The Neon Pool keeps WebSocket ops and resources alive past each step (idle
// clients, and after pool.end() a client reports "Failed to send frame"
// asynchronously), so the op and resource sanitizers cannot hold here
// (docs/reference/deno-runtime.md §2, docs/reference/neon-local.md §5).
Deno.test({
  name: "The Neon Pool from createPool() works through the proxy against local PostgreSQL",
  ...noSanitizers,
}, async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "neon_proxy_test_" });
  let pg: PostgresServer | null = null;
  try {
    pg = await PostgresServer.start({ dir });
    await using proxy = await startNeonProxy({ allow: [`127.0.0.1:${pg.port}`] });
    const poolErrors: Error[] = [];
    const local = {
      wsProxy: proxy.wsProxy,
      useSecureWebSocket: false,
      pipelineConnect: false as const,
      connectionTimeoutMillis: 5_000,
      onError: (e: Error) => poolErrors.push(e),
    };
    const pool = createPool({ ...local, databaseUrl: pg.databaseUrl, max: 10 });
    try {
      await t.step("query and parameters", async () => {
        const { rows } = await pool.query("select $1::int + $2::int as sum, current_user as who", [
          2,
          3,
        ]);
        assert.deepEqual(rows, [{ sum: 5, who: "app" }]);
      });

      await t.step("transactions commit and roll back", async () => {
        await pool.query("create table items (id int primary key, name text)");
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          await client.query("insert into items values (1, 'kept')");
          await client.query("COMMIT");
          await client.query("BEGIN");
          await client.query("insert into items values (2, 'dropped')");
          await client.query("ROLLBACK");
        } finally {
          client.release();
        }
        const { rows } = await pool.query("select id, name from items order by id");
        assert.deepEqual(rows, [{ id: 1, name: "kept" }]);
      });

      await t.step("PostgreSQL error codes surface", async () => {
        await assert.rejects(pool.query("select * from missing_table"), { code: "42P01" });
        await assert.rejects(pool.query("insert into items values (1, 'again')"), {
          code: "23505",
        });
      });

      await t.step("50 concurrent queries share 10 connections", async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => pool.query("select $1::int as i", [i])),
        );
        assert.deepEqual(results.map((r) => r.rows[0].i), Array.from({ length: 50 }, (_, i) => i));
        assert.ok(pool.totalCount <= 10, `totalCount ${pool.totalCount}`);
      });

      await t.step("a destination outside the allow-list is refused", async () => {
        // The system PostgreSQL on 5432 (or nothing): the proxy must not reach it.
        const forbidden = createPool({
          ...local,
          databaseUrl: pg!.databaseUrl.replace(`:${pg!.port}/`, ":5432/"),
        });
        try {
          // The driver rejects with the WebSocket's ErrorEvent, not an Error.
          await assert.rejects(forbidden.query("select 1"), (e: { message?: string }) => {
            assert.match(String(e.message), /403/);
            return true;
          });
        } finally {
          await forbidden.end();
        }
        const { rows } = await pool.query("select 1 as still_working");
        assert.deepEqual(rows, [{ still_working: 1 }]);
      });
    } finally {
      await pool.end();
    }
  } finally {
    await pg?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startNeonProxy() refuses a browser's Origin before upgrading, unless it is allowed", async () => {
  const echo = startEchoServer();
  try {
    await using proxy = await startNeonProxy({
      allow: [echo.address],
      origins: ["http://localhost:8000"],
    });
    const url = `http://${proxy.wsProxy}?address=${echo.address}`;
    const upgrade = { upgrade: "websocket", connection: "Upgrade" };
    for (const origin of ["https://evil.example", "null", "http://127.0.0.1:1"]) {
      const res = await fetch(url, { headers: { ...upgrade, origin } });
      assert.equal(res.status, 403, origin);
      await res.body?.cancel();
    }
    assert.equal(proxy.openPipes, 0);
    // The Neon driver sends no Origin: still served (426 here: fetch cannot upgrade).
    const plain = await fetch(url);
    assert.equal(plain.status, 426);
    await plain.body?.cancel();
    const allowed = await fetch(url, { headers: { origin: "http://localhost:8000" } });
    assert.equal(allowed.status, 426);
    await allowed.body?.cancel();
  } finally {
    await echo.close();
  }
});

Deno.test("startNeonProxy() closes a pipe whose client sends a message over maxMessageBytes", async () => {
  const echo = startEchoServer();
  try {
    await using proxy = await startNeonProxy({ allow: [echo.address], maxMessageBytes: 1024 });
    const { ws, opened, closed, nextMessage } = openWebSocket(
      `ws://${proxy.wsProxy}?address=${echo.address}`,
    );
    assert.equal((await opened).type, "open");
    const reply = nextMessage();
    ws.send(new Uint8Array(1024));
    assert.equal((await reply).length > 0, true, "a message at the cap passes");
    ws.send(new Uint8Array(1025));
    assert.equal((await closed).code, 1009);
  } finally {
    await echo.close();
  }
});
