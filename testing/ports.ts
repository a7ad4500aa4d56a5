/**
 * Network peers for fault tests: a loopback port that accepts connections
 * and never answers (a hung service). A port nobody listens on is
 * `freePort()` of dev/ports.ts.
 *
 * @module
 */

/** A listener on 127.0.0.1 that accepts every connection and never writes; `close()` drops them. */
export function blackHole(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed by the peer
        }
      }
      await accepting;
    },
  };
}
