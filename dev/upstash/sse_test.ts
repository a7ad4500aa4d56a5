/**
 * Pub/sub over server-sent events: conformance group F of
 * docs/reference/upstash-rest-protocol.md §13 as raw HTTP and through `@upstash/redis`,
 * plus connection release (CLIENT LIST, PUBSUB NUMSUB), keep-alives and
 * shutdown with open streams.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { requestHeaders, startBridgeFixture, TOKEN } from "../../testing/upstash_bridge.ts";
import { waitUntil } from "../../testing/wait.ts";
import type { BridgeFixture } from "../../testing/upstash_bridge.ts";

/** Reads an event stream line by line, with a deadline per line. */
class StreamReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = "";

  constructor(res: Response) {
    this.#reader = res.body!.getReader();
  }

  /** The next non-empty line (data or comment); null when the stream ended. */
  async line(timeoutMs = 2000): Promise<string | null> {
    while (true) {
      const newline = this.#buffer.indexOf("\n");
      if (newline !== -1) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        if (line !== "") return line;
        continue;
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`No SSE line within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        const { value, done } = await Promise.race([this.#reader.read(), timeout]);
        if (done) return null;
        this.#buffer += this.#decoder.decode(value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** The next `data:` line, skipping keep-alive comments. */
  async data(): Promise<string | null> {
    for (let line = await this.line(); line !== null; line = await this.line()) {
      if (line.startsWith("data: ")) return line;
    }
    return null;
  }

  /** Closes the stream from the client side (what an aborted fetch does to the server). */
  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}

const SSE_HEADERS = {
  accept: "text/event-stream",
  "cache-control": "no-cache",
  connection: "keep-alive",
};

async function subscribe(
  fx: BridgeFixture,
  path: string,
  init: { signal?: AbortSignal; headers?: Record<string, string | null> } = {},
): Promise<{ res: Response; stream: StreamReader }> {
  const res = await fetch(fx.bridge.url + path, {
    method: "POST",
    headers: requestHeaders({ headers: { ...SSE_HEADERS, ...init.headers } }),
    body: "[]",
    signal: init.signal,
  });
  let stream: StreamReader | null = null;
  // Lazily: a reader locks the body, and error answers are read as JSON.
  return {
    res,
    get stream() {
      return stream ??= new StreamReader(res);
    },
  };
}

async function publish(fx: BridgeFixture, channel: string, message: string): Promise<unknown> {
  return (await fx.post("/pipeline", [["PUBLISH", channel, message]])).body;
}

async function numsub(fx: BridgeFixture, channel: string): Promise<number> {
  const res = await fx.post("/", ["PUBSUB", "NUMSUB", channel], { raw: true });
  return Number((res.body as { result: [string, number] }).result[1]);
}

async function clientCount(fx: BridgeFixture): Promise<number> {
  const res = await fx.post("/", ["CLIENT", "LIST"], { raw: true });
  return (res.body as { result: string }).result.trim().split("\n").length;
}

Deno.test("F: subscriptions stream Redis pub/sub as server-sent events", async (t) => {
  await using fx = await startBridgeFixture();

  await t.step("F1-F3 subscribe, then messages arrive raw, commas and JSON intact", async () => {
    const { res, stream } = await subscribe(fx, "/subscribe/chat");
    try {
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("content-type"), "text/event-stream");
      assert.equal(res.headers.get("cache-control"), "no-cache");
      assert.equal(await stream.data(), "data: subscribe,chat,1");
      assert.deepEqual(await publish(fx, "chat", "hello"), [{ result: 1 }]);
      assert.equal(await stream.data(), "data: message,chat,hello");
      await publish(fx, "chat", '{"a":1,"b":"x,y"}');
      assert.equal(await stream.data(), 'data: message,chat,{"a":1,"b":"x,y"}');
      await publish(fx, "chat", "héllo");
      assert.equal(await stream.data(), "data: message,chat,héllo");
    } finally {
      await stream.cancel();
    }
  });

  await t.step("F4 psubscribe streams pmessage events with pattern and channel", async () => {
    const { res, stream } = await subscribe(fx, "/psubscribe/news.*");
    try {
      assert.equal(res.status, 200);
      assert.equal(await stream.data(), "data: psubscribe,news.*,1");
      assert.deepEqual(await publish(fx, "news.eu", '{"a":1}'), [{ result: 1 }]);
      assert.equal(await stream.data(), 'data: pmessage,news.*,news.eu,{"a":1}');
    } finally {
      await stream.cancel();
    }
  });

  await t.step(
    "F5 two subscriptions to one channel each count 1 and get every message",
    async () => {
      const first = await subscribe(fx, "/subscribe/chat");
      const second = await subscribe(fx, "/subscribe/chat");
      try {
        assert.equal(await first.stream.data(), "data: subscribe,chat,1");
        assert.equal(await second.stream.data(), "data: subscribe,chat,1");
        assert.deepEqual(await publish(fx, "chat", "m1"), [{ result: 2 }]);
        assert.deepEqual(await publish(fx, "chat", "m2"), [{ result: 2 }]);
        for (const { stream } of [first, second]) {
          assert.equal(await stream.data(), "data: message,chat,m1");
          assert.equal(await stream.data(), "data: message,chat,m2");
        }
      } finally {
        await first.stream.cancel();
        await second.stream.cancel();
      }
    },
  );

  await t.step("F6 the channel is percent-decoded from the path", async () => {
    const { stream } = await subscribe(fx, "/subscribe/a%20b");
    try {
      assert.equal(await stream.data(), "data: subscribe,a b,1");
      assert.deepEqual(await publish(fx, "a b", "x"), [{ result: 1 }]);
      assert.equal(await stream.data(), "data: message,a b,x");
    } finally {
      await stream.cancel();
    }
    const slash = await subscribe(fx, "/subscribe/a/b");
    try {
      assert.equal(await slash.stream.data(), "data: subscribe,a/b,1");
    } finally {
      await slash.stream.cancel();
    }
  });

  await t.step("F7 a client abort releases the subscription within a second", async () => {
    const controller = new AbortController();
    const { stream } = await subscribe(fx, "/subscribe/chat", { signal: controller.signal });
    assert.equal(await stream.data(), "data: subscribe,chat,1");
    assert.equal(await numsub(fx, "chat"), 1);
    controller.abort();
    await assert.rejects(stream.line(), { name: "AbortError" });
    await waitUntil(async () => (await numsub(fx, "chat")) === 0, {
      what: "PUBSUB NUMSUB chat to drop to 0",
      timeoutMs: 1000,
      everyMs: 10,
    });
    assert.deepEqual((await fx.post("/", ["PUBSUB", "NUMSUB", "chat"])).body, {
      result: ["Y2hhdA==", 0],
    });
  });

  await t.step("F9 a bad token on /subscribe is a 401 JSON error, not a stream", async () => {
    for (const authorization of ["Bearer wrong", null]) {
      const { res } = await subscribe(fx, "/subscribe/x", { headers: { authorization } });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("content-type"), "application/json");
      assert.equal(typeof (await res.json()).error, "string");
    }
    assert.equal(await numsub(fx, "x"), 0);
  });

  await t.step("no Redis subscription connection is left behind", async () => {
    await waitUntil(async () => (await clientCount(fx)) === 1, {
      what: "subscriber connections to close",
      timeoutMs: 1000,
      everyMs: 10,
    });
  });
});

Deno.test("F8 @upstash/redis subscribes, receives 1,000 messages in order, and releases Redis", async () => {
  await using fx = await startBridgeFixture();
  const redis = new Redis({ url: fx.bridge.url, token: TOKEN, retry: false });
  const baseline = await clientCount(fx);

  const subscriber = redis.subscribe<{ i: number }>("chat");
  const messages: { channel: string; message: unknown }[] = [];
  let allReceived!: () => void;
  const done = new Promise<void>((resolve) => (allReceived = resolve));
  const subscribed = new Promise<number>((resolve) => subscriber.on("subscribe", resolve));
  subscriber.on("message", (event) => {
    messages.push(event);
    if (messages.length === 1001) allReceived();
  });
  try {
    assert.equal(await subscribed, 1);
    assert.equal(await clientCount(fx), baseline + 1);
    assert.equal(await numsub(fx, "chat"), 1);

    assert.equal(await redis.publish("chat", { a: 1, b: "x,y" }), 1);
    const counts = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => redis.publish("chat", { i })),
    );
    assert.deepEqual(counts, Array(1000).fill(1));
    await done;
    assert.deepEqual(messages[0], { channel: "chat", message: { a: 1, b: "x,y" } });
    assert.deepEqual(
      messages.slice(1).map((m) => (m.message as { i: number }).i),
      Array.from({ length: 1000 }, (_, i) => i),
    );
  } finally {
    await subscriber.unsubscribe();
  }
  await waitUntil(async () => (await clientCount(fx)) === baseline, {
    what: "the subscription connection to close",
    timeoutMs: 1000,
    everyMs: 10,
  });
  assert.equal(await numsub(fx, "chat"), 0);
});

Deno.test("@upstash/redis psubscribe gets JSON pmessages", async () => {
  await using fx = await startBridgeFixture();
  const redis = new Redis({ url: fx.bridge.url, token: TOKEN, retry: false });
  const subscriber = redis.psubscribe("news.*");
  const subscribed = new Promise<number>((resolve) => subscriber.on("psubscribe", resolve));
  const received = new Promise<unknown>((resolve) => subscriber.on("pmessage", resolve));
  try {
    assert.equal(await subscribed, 1);
    assert.equal(await redis.publish("news.eu", { a: 1 }), 1);
    assert.deepEqual(await received, { pattern: "news.*", channel: "news.eu", message: { a: 1 } });
  } finally {
    await subscriber.unsubscribe();
  }
  await waitUntil(async () => (await fx.post("/", ["PUBSUB", "NUMPAT"])).text === '{"result":0}', {
    what: "PUBSUB NUMPAT to drop to 0",
    timeoutMs: 1000,
    everyMs: 10,
  });
});

Deno.test("event streams carry keep-alives and end with the bridge or with Redis", async (t) => {
  await using fx = await startBridgeFixture({ sseKeepAliveMs: 20 });

  await t.step("keep-alive comments arrive between events", async () => {
    const { stream } = await subscribe(fx, "/subscribe/quiet");
    try {
      assert.equal(await stream.line(), "data: subscribe,quiet,1");
      assert.equal(await stream.line(), ": keep-alive");
      assert.equal(await stream.line(), ": keep-alive");
    } finally {
      await stream.cancel();
    }
  });

  await t.step("payload bytes are passed through unencoded", async () => {
    const { stream } = await subscribe(fx, "/subscribe/bin");
    try {
      assert.equal(await stream.data(), "data: subscribe,bin,1");
      await fx.post("/", ["EVAL", "return redis.call('PUBLISH', 'bin', string.char(255, 65))", 0]);
      assert.equal(await stream.data(), "data: message,bin,\ufffdA");
    } finally {
      await stream.cancel();
    }
  });

  await t.step("a client that stops reading is dropped instead of queuing forever", async () => {
    const { stream } = await subscribe(fx, "/subscribe/flood");
    try {
      assert.equal(await stream.data(), "data: subscribe,flood,1");
      const mebibyte = "x".repeat(1024 * 1024);
      for (let i = 0; i < 48 && (await numsub(fx, "flood")) === 1; i++) {
        await publish(fx, "flood", mebibyte);
      }
      await waitUntil(async () => (await numsub(fx, "flood")) === 0, {
        what: "the flooded subscription to be dropped",
        timeoutMs: 1000,
        everyMs: 10,
      });
    } finally {
      await stream.cancel();
    }
  });

  await t.step("streams end when Redis goes away; subscribing then is a 503", async () => {
    const { stream } = await subscribe(fx, "/subscribe/chat");
    assert.equal(await stream.data(), "data: subscribe,chat,1");
    await fx.redis.stop();
    assert.equal(await stream.data(), null);
    const { res } = await subscribe(fx, "/subscribe/chat");
    assert.equal(res.status, 503);
    assert.match((await res.json()).error, /Redis at 127\.0\.0\.1:\d+ is unavailable/);
    await fx.redis.restart();
  });

  await t.step("close() ends open streams and quits their connections", async () => {
    const { stream } = await subscribe(fx, "/subscribe/chat");
    assert.equal(await stream.data(), "data: subscribe,chat,1");
    await fx.bridge.close();
    assert.equal(await stream.data(), null);
  });
});
