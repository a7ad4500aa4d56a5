/**
 * The runtime's floor for bench:ws's `idle` scenario: Deno.serve upgrading
 * `GET /v1/ws` with the edge's socket options (the `bearer` subprotocol
 * echoed, the same idle timeout) and a `welcome` frame, nothing else: no
 * authentication, no hub, no registry. What an idle connection costs here is
 * what the edge cannot cut in its own code. Logs `{"msg":"edge listening","url":…}`
 * once listening, like the edge (testing/process.ts waits for it).
 *
 * @module
 */
const server = Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) =>
    console.log(JSON.stringify({ msg: "edge listening", url: `http://127.0.0.1:${port}` })),
}, (req) => {
  const offered = req.headers.get("sec-websocket-protocol")?.split(",")[0]?.trim();
  // The hub's default: twice the 25 s ping interval.
  const { socket, response } = Deno.upgradeWebSocket(req, {
    ...(offered ? { protocol: offered } : {}),
    idleTimeout: 50,
  });
  socket.onopen = () => socket.send('{"type":"welcome"}');
  return response;
});
Deno.addSignalListener("SIGTERM", () => void server.shutdown());
await server.finished;
