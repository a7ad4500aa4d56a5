import assert from "node:assert/strict";
import { buildRequest, RawConnection, RawHttpError, RawPool } from "./raw_http.ts";

Deno.test("raw requests carry method, headers, body and a per-request header", () => {
  const bytes = buildRequest({
    url: new URL("http://127.0.0.1:8/v1/tasks?x=1"),
    method: "POST",
    headers: [["Content-Type", "application/json"]],
    body: "{}",
    uniqueHeader: "Idempotency-Key",
  });
  assert.equal(
    new TextDecoder().decode(bytes("k1")),
    "POST /v1/tasks?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8\r\nContent-Type: application/json\r\n" +
      "Content-Length: 2\r\nIdempotency-Key: k1\r\n\r\n{}",
  );
});

Deno.test("a raw connection reads sized, chunked, empty and large answers in turn", async () => {
  const big = "y".repeat(200_000);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    assert.equal(await req.text(), path === "/post" ? "hello" : "");
    if (path === "/chunked") {
      const body = ReadableStream.from(["ab", "cd", "ef"]).pipeThrough(new TextEncoderStream());
      return new Response(body, { status: 201 });
    }
    if (path === "/empty") return new Response(null, { status: 204 });
    if (path === "/big") return new Response(big);
    return new Response("x", { status: path === "/post" ? 202 : 404 });
  });
  const url = new URL(`http://127.0.0.1:${server.addr.port}/`);
  const conn = await RawConnection.open(url);
  try {
    const req = (path: string, method = "GET", body: string | null = null) =>
      buildRequest({ url: new URL(path, url), method, headers: [], body, uniqueHeader: null })();
    for (let i = 0; i < 3; i++) {
      assert.equal(await conn.request(req("/chunked")), 201);
      assert.equal(await conn.request(req("/empty")), 204);
      assert.equal(await conn.request(req("/post", "POST", "hello")), 202);
      assert.equal(await conn.request(req("/big")), 200);
      assert.equal(await conn.request(req("/nope")), 404);
    }
    assert.equal(conn.closed, false, "one keep-alive connection for all of them");
  } finally {
    conn.close();
    await server.shutdown();
  }
});

Deno.test("a raw pool reports a refused connection as an error", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const pool = new RawPool(new URL(`http://127.0.0.1:${port}/`));
  await assert.rejects(() => pool.send(new Uint8Array([71])));
  pool.close();
  // An answer that is not HTTP is an error too.
  const fake = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const c = await fake.accept();
    await c.read(new Uint8Array(100));
    await c.write(new TextEncoder().encode("SSH-2.0-x\r\n\r\n"));
    c.close();
  })();
  const conn = await RawConnection.open(new URL(`http://127.0.0.1:${fake.addr.port}/`));
  await assert.rejects(
    () => conn.request(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
    RawHttpError,
  );
  await served;
  fake.close();
});
