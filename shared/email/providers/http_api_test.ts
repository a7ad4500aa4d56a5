import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHttpApiProvider, type FetchLike } from "./http_api.ts";
import { EmailPermanentError, EmailProviderConfigError, EmailTransientError } from "../provider.ts";
import { isPermanent } from "../../queue/errors.ts";
import { sampleEmail } from "../../../testing/email.ts";

interface Received {
  authorization: string | null;
  idempotencyKey: string | null;
  contentType: string | null;
  body: Record<string, unknown>;
}

type Answer = { status: number; body?: string; headers?: Record<string, string> } | "hang";

/** A loopback email API that records each request and answers with `answer`. */
function startApi(answer: Answer) {
  const received: Received[] = [];
  const hanging: (() => void)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    received.push({
      authorization: req.headers.get("authorization"),
      idempotencyKey: req.headers.get("idempotency-key"),
      contentType: req.headers.get("content-type"),
      body: await req.json(),
    });
    if (answer === "hang") {
      await new Promise<void>((resolve) => hanging.push(resolve));
      return new Response("too late");
    }
    return new Response(answer.body ?? "", { status: answer.status, headers: answer.headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/v1/email`,
    received,
    async close() {
      for (const release of hanging) release();
      await server.shutdown();
    },
  };
}

const KEY = "test-api-key";

Deno.test("http_api provider posts the message with bearer auth and the Message-ID as Idempotency-Key", async () => {
  const api = startApi({ status: 200, body: JSON.stringify({ id: "msg_123" }) });
  try {
    const msg = sampleEmail();
    const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
    const result = await provider.send(msg, {});
    await provider.send(msg, {}); // a retry carries the same key
    assert.equal(provider.name, "http_api");
    assert.equal(result.providerMessageId, "msg_123");
    assert.match(result.response, /^200 /);
    assert.equal(api.received.length, 2);
    assert.deepEqual(api.received.map((r) => r.idempotencyKey), [msg.messageId, msg.messageId]);
    const first = api.received[0]!;
    assert.equal(first.authorization, `Bearer ${KEY}`);
    assert.equal(first.contentType, "application/json");
    assert.equal(first.body.from, msg.from);
    assert.equal(first.body.to, msg.to);
    assert.equal(first.body.subject, msg.subject);
    assert.equal(first.body.text, msg.text);
    assert.equal(first.body.html, msg.html);
    const headers = first.body.headers as Record<string, string>;
    assert.equal(headers["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click");
    assert.equal(headers["Message-ID"], msg.messageId);
    const [attachment] = first.body.attachments as Record<string, string>[];
    assert.equal(attachment!.filename, "invite.ics");
    assert.equal(attachment!.contentType, msg.attachments![0]!.contentType);
    assert.equal(
      Buffer.from(attachment!.content!, "base64").toString(),
      msg.attachments![0]!.content,
    );
  } finally {
    await api.close();
  }
});

Deno.test("http_api provider turns a 400 into a permanent error with the provider's message", async () => {
  const api = startApi({
    status: 400,
    body: JSON.stringify({ message: "Invalid `to` address: sam@" }),
    headers: { "content-type": "application/json" },
  });
  try {
    const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailPermanentError);
      assert.ok(isPermanent(err));
      assert.equal(err.message, "Invalid `to` address: sam@");
      assert.equal(err.status, 400);
      return true;
    });
  } finally {
    await api.close();
  }
});

Deno.test("http_api provider reads nested error messages too", async () => {
  const api = startApi({ status: 422, body: JSON.stringify({ error: { message: "Bad from" } }) });
  try {
    const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailPermanentError);
      assert.equal(err.message, "Bad from");
      return true;
    });
  } finally {
    await api.close();
  }
});

Deno.test("http_api provider turns a 503 into a transient error", async () => {
  const api = startApi({ status: 503, body: "upstream maintenance" });
  try {
    const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.equal(isPermanent(err), false);
      assert.equal(err.status, 503);
      assert.match(err.message, /upstream maintenance/);
      return true;
    });
  } finally {
    await api.close();
  }
});

Deno.test("http_api provider treats 429 and 408 as transient and keeps Retry-After", async () => {
  for (const status of [429, 408]) {
    const api = startApi({ status, body: "{}", headers: { "retry-after": "30" } });
    try {
      const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
      await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
        assert.ok(err instanceof EmailTransientError, `status ${status}`);
        assert.equal(err.status, status);
        assert.equal(err.retryAfterMs, 30_000);
        return true;
      });
    } finally {
      await api.close();
    }
  }
});

Deno.test("http_api provider gives up after timeoutMs as a transient error", async () => {
  const api = startApi("hang");
  try {
    const provider = createHttpApiProvider({ url: api.url, apiKey: KEY, timeoutMs: 100 });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.match(err.message, /No answer in 100ms/);
      return true;
    });
  } finally {
    await api.close();
  }
});

Deno.test("http_api provider treats a refused connection as transient", async () => {
  const api = startApi({ status: 200 });
  await api.close(); // nothing listens on the port any more
  const provider = createHttpApiProvider({ url: api.url, apiKey: KEY });
  await assert.rejects(provider.send(sampleEmail(), {}), EmailTransientError);
});

Deno.test("http_api provider sends through an injected fetch and wraps its errors", async () => {
  const api = startApi({ status: 200, body: "{}" });
  try {
    const calls: string[] = [];
    const counting: FetchLike = (input, init) => {
      calls.push(String(input));
      return fetch(input, init);
    };
    await createHttpApiProvider({ url: api.url, apiKey: KEY, fetch: counting })
      .send(sampleEmail(), {});
    assert.deepEqual(calls, [api.url]);

    // A breaker refusing the call: the send is retried later, the cause kept.
    const open = Object.assign(new Error('Circuit breaker "email" is open'), {
      name: "BreakerOpenError",
      retryAfterMs: 5_000,
    });
    const refusing: FetchLike = () => Promise.reject(open);
    await assert.rejects(
      createHttpApiProvider({ url: api.url, apiKey: KEY, fetch: refusing }).send(sampleEmail(), {}),
      (err) => {
        assert.ok(err instanceof EmailTransientError);
        assert.equal(err.cause, open);
        assert.equal(err.retryAfterMs, 5_000);
        return true;
      },
    );
  } finally {
    await api.close();
  }
});

Deno.test("createHttpApiProvider() checks its settings once, at construction", () => {
  assert.throws(
    () => createHttpApiProvider({ url: "ftp://x", apiKey: KEY }),
    EmailProviderConfigError,
  );
  assert.throws(
    () => createHttpApiProvider({ url: "nope", apiKey: KEY }),
    EmailProviderConfigError,
  );
  assert.throws(
    () => createHttpApiProvider({ url: "https://api.example", apiKey: "" }),
    EmailProviderConfigError,
  );
});

Deno.test("http_api provider reads an apiKey function per send (a rotated EMAIL_API_KEY)", async () => {
  const api = startApi({ status: 200, body: JSON.stringify({ id: "msg_1" }) });
  try {
    let key = "key-before-rotation";
    const provider = createHttpApiProvider({ url: api.url, apiKey: () => key });
    await provider.send(sampleEmail(), {});
    key = "key-after-rotation";
    await provider.send(sampleEmail(), {});
    assert.deepEqual(api.received.map((r) => r.authorization), [
      "Bearer key-before-rotation",
      "Bearer key-after-rotation",
    ]);
  } finally {
    await api.close();
  }
});
