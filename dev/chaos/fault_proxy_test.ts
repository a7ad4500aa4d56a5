import assert from "node:assert/strict";
import { startFaultProxy } from "./fault_proxy.ts";

/** An echo server on a free loopback port. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      conn.readable.pipeTo(conn.writable).catch(() => {}).finally(() => conns.delete(conn));
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await serving;
    },
  };
}

async function roundTrip(conn: Deno.Conn, text: string): Promise<string | null> {
  await conn.write(new TextEncoder().encode(text));
  const buf = new Uint8Array(text.length);
  let got = 0;
  while (got < text.length) {
    const n = await conn.read(buf.subarray(got));
    if (n === null) return null;
    got += n;
  }
  return new TextDecoder().decode(buf);
}

Deno.test("the fault proxy forwards, delays, blackholes and resets on command", async () => {
  const echo = echoServer();
  const proxy = await startFaultProxy({ upstreamPort: echo.port });
  try {
    const a = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(a, "hello"), "hello");

    proxy.setFault({ kind: "latency", ms: 50 });
    const started = performance.now();
    assert.equal(await roundTrip(a, "slow"), "slow");
    // Both directions are delayed: at least the injected 2 × 50 ms went by.
    assert.ok(performance.now() - started >= 95);

    proxy.setFault({ kind: "blackhole" });
    await a.write(new TextEncoder().encode("lost"));
    const silent = await Promise.race([
      a.read(new Uint8Array(16)).then(() => "answered"),
      new Promise((r) => setTimeout(() => r("silent"), 200)),
    ]);
    assert.equal(silent, "silent");

    // Lifting the blackhole closes the connection that lost bytes.
    proxy.setFault({ kind: "pass" });
    assert.equal(proxy.connections, 0);
    assert.equal(await a.read(new Uint8Array(16)), null);

    proxy.setFault({ kind: "reset" });
    assert.equal(proxy.connections, 0);
    const b = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await b.read(new Uint8Array(1)), null, "new connections are closed at once");
    b.close();

    proxy.setFault({ kind: "pass" });
    const c = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    assert.equal(await roundTrip(c, "back"), "back");
    c.close();
    try {
      a.close();
    } catch { /* closed by the reset */ }
    assert.throws(() => proxy.setFault({ kind: "latency", ms: -1 }), RangeError);
    await assert.rejects(
      startFaultProxy({ upstreamPort: 1, upstreamHost: "10.0.0.1" }),
      RangeError,
    );
  } finally {
    await proxy.close();
    await echo.close();
  }
});

Deno.test("a delayed write to an upstream that closed ends the pair quietly (no uncaught rejection)", async () => {
  // An upstream that hangs up on every connection at once.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const hangingUp = (async () => {
    for await (const conn of listener) conn.close();
  })().catch(() => {});
  const proxy = await startFaultProxy({ upstreamPort: (listener.addr as Deno.NetAddr).port });
  try {
    proxy.setFault({ kind: "latency", ms: 100 });
    const a = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
    await a.write(new TextEncoder().encode("late"));
    // The proxy closes the client once the upstream hung up...
    assert.equal(await a.read(new Uint8Array(16)).catch(() => null), null);
    a.close();
    // ...and the delayed chunk's write then fails on the closed upstream: it must be handled
    // (an unhandled rejection fails this test module). Wait until it was attempted.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(proxy.connections, 0);
  } finally {
    await proxy.close();
    listener.close();
    await hangingUp;
  }
});
