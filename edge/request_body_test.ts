import assert from "node:assert/strict";
import { routeHarness } from "../testing/route_harness.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { useTestStack } from "../testing/stack.ts";
import { readingBody, RequestBodyUnreadableError } from "./request_body.ts";

const BODY = JSON.stringify({
  events: [{
    id: crypto.randomUUID(),
    time: new Date().toISOString(),
    event_type: "page_view",
    source: "request_body_test",
  }],
});

/** Sends the head of `POST /v1/events` (the body announced, not sent) over a raw connection. */
async function sendHead(
  port: number,
  authorization: string,
  framing = `content-length: ${BODY.length}`,
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head =
    `POST /v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: ${authorization}\r\n` +
    `content-type: application/json\r\n${framing}\r\n\r\n`;
  await conn.write(new TextEncoder().encode(head));
  return conn;
}

/** The answer the server writes (until its JSON body ends or the connection closes). */
async function readAnswer(conn: Deno.TcpConn): Promise<string> {
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    if (/\r\n\r\n[\s\S]*\}$/.test(text)) return text;
  }
  return new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
}

function problemOf(answer: string): { status: number; retryAfter: string | null; code: unknown } {
  const [head = "", body = ""] = answer.split("\r\n\r\n");
  const status = Number(head.match(/^HTTP\/1\.1 (\d{3})/)?.[1]);
  const retryAfter = head.match(/\r\nretry-after: *(\S+)/i)?.[1] ?? null;
  return { status, retryAfter, code: body ? JSON.parse(body).code : null };
}

Deno.test("readingBody turns the runtime's unreadable-body failure into a 503, nothing else", async () => {
  const gone = new Deno.errors.BadResource("Cannot read body as underlying resource unavailable");
  const err = await readingBody(() => Promise.reject(gone)).catch((e) => e);
  assert.ok(err instanceof RequestBodyUnreadableError);
  assert.equal(err.code, "request-body-unreadable");
  assert.equal(err.status, 503);
  assert.equal(err.details.retry_after, 1);
  assert.equal(err.cause, gone);
  const other = new TypeError("not this one");
  assert.equal(await readingBody(() => Promise.reject(other)).catch((e) => e), other);
  assert.equal(await readingBody(() => Promise.resolve(7)), 7);
});

Deno.test({
  name: "a request body the edge cannot read is 503 request-body-unreadable, not 500, no breaker",
  // Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
  ...noSanitizers,
  async fn(t) {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { breakers: true });
    const breakersBefore = JSON.stringify(await h.breakers.list());
    const arrived: (() => void)[] = [];
    const serve = () =>
      Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req, info) => {
        arrived.shift()?.();
        return h.app.fetch(req, { info });
      });
    const unhandled = () => h.deps.logs.filter((l) => JSON.parse(l).msg === "unhandled error");

    const UNREADABLE = { status: 503, retryAfter: "1", code: "request-body-unreadable" };
    /** The head with `framing`, then `part` of the body, then the client closes its side. */
    const halfClosed = async (framing: string | undefined, part: string) => {
      const server = serve();
      try {
        const conn = await sendHead(server.addr.port, h.tokens.minerva, framing);
        await conn.write(new TextEncoder().encode(part));
        await conn.closeWrite();
        const answer = problemOf(await readAnswer(conn));
        conn.close();
        return answer;
      } finally {
        await server.shutdown();
      }
    };

    await t.step("the client half-closes its connection before the body is sent", async () => {
      assert.deepEqual(await halfClosed(undefined, BODY.slice(0, 10)), UNREADABLE);
    });

    // Without Content-Length the body limit reads the body (edge/middleware/http_rules.ts).
    await t.step("the same with a chunked body", async () => {
      const chunk = `a\r\n${BODY.slice(0, 10)}\r\n`;
      assert.deepEqual(await halfClosed("transfer-encoding: chunked", chunk), UNREADABLE);
    });

    // What `deno task chaos` saw (docs/reliability.md): SIGTERM starts Deno.serve's drain while a
    // body is on its way; the runtime stops reading it, the client is still there and waits.
    await t.step("the edge starts its drain while the body is on its way", async () => {
      const server = serve();
      const inHandler = new Promise<void>((r) => arrived.push(r));
      const conn = await sendHead(server.addr.port, h.tokens.minerva);
      await inHandler;
      const drained = server.shutdown();
      await conn.write(new TextEncoder().encode(BODY));
      const answer = problemOf(await readAnswer(conn));
      conn.close();
      await drained;
      assert.deepEqual(answer, UNREADABLE);
    });

    assert.deepEqual(unhandled(), []);
    const debug = h.deps.logs.map((l) => JSON.parse(l)).filter((l) =>
      l.msg === "request body unreadable"
    );
    assert.equal(debug.length, 3);
    assert.ok(debug.every((l) => l.level === "debug"));
    assert.equal(JSON.stringify(await h.breakers.list()), breakersBefore);
  },
});
