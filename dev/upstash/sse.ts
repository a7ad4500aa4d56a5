/**
 * Pub/sub over server-sent events (docs/reference/upstash-rest-protocol.md §8): one stream
 * per `POST /subscribe/<channel>` or `/psubscribe/<pattern>`, each on its own
 * Redis connection, so every stream's first event reads
 * `data: subscribe,<channel>,1` as the SDK's tests expect.
 *
 * @module
 */
import { RedisUnavailableError } from "./errors.ts";
import type { MessageListener, RedisLink } from "./redis_link.ts";

/** How a stream was opened: the path prefix the client used. */
export type SubscriptionKind = "subscribe" | "psubscribe";

const encoder = new TextEncoder();
const KEEP_ALIVE = encoder.encode(": keep-alive\n\n");
const COMMA = 0x2c;
const EVENT_END = encoder.encode("\n\n");

/**
 * Bytes queued for a client that stops reading before its stream is ended;
 * pub/sub has no flow control, so the queue would otherwise grow without bound.
 */
const MAX_QUEUED_BYTES = 16 * 1024 * 1024;

const SSE_HEADERS = {
  "content-type": "text/event-stream",
  "cache-control": "no-cache",
} as const;

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.byteLength;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** The open event streams of one bridge. */
export class EventStreams {
  readonly #link: RedisLink;
  readonly #keepAliveMs: number;
  /** Ends a stream: stops its timer, closes its Redis connection, closes the body. */
  readonly #enders = new Set<() => Promise<void>>();
  #closed = false;

  constructor(link: RedisLink, keepAliveMs: number) {
    this.#link = link;
    this.#keepAliveMs = keepAliveMs;
  }

  /** Number of open streams. */
  get size(): number {
    return this.#enders.size;
  }

  /**
   * Subscribes and answers with the stream. The first event is written only
   * after Redis has confirmed, so a client that waits for its "subscribe"
   * event before publishing loses nothing. Payloads are raw bytes, never
   * base64 (the SDK does not decode SSE data). Throws
   * `RedisUnavailableError` before any byte is sent when Redis is away.
   */
  async open(kind: SubscriptionKind, channel: string): Promise<Response> {
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    // Replaced once subscribed; until then there is nothing to release.
    let end = (_closeBody: boolean): Promise<void> => Promise.resolve();
    // Set by end(): messages still in flight must not touch a closed body.
    let ended = false;
    const body = new ReadableStream<Uint8Array>(
      {
        start(c) {
          controller = c;
        },
        // Deno.serve cancels the body when the client goes away (the SDK's
        // unsubscribe() only aborts its fetch): release Redis right then.
        cancel: () => end(false),
      },
      new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }),
    );

    // Messages can be decoded in the same chunk as the confirmation, before
    // the code after `await subscribe()` runs; hold them until the first event.
    let early: Uint8Array[] | null = [];
    const prefix = encoder.encode(
      kind === "subscribe" ? "data: message," : `data: pmessage,${channel},`,
    );
    const onMessage: MessageListener = (message, from) => {
      if (ended) return;
      const event = concat([prefix, from, Uint8Array.of(COMMA), message, EVENT_END]);
      if (early !== null) {
        early.push(event);
        return;
      }
      controller.enqueue(event);
      if (controller.desiredSize !== null && controller.desiredSize < -MAX_QUEUED_BYTES) {
        // error() drops the queue at once; close() would first deliver it.
        controller.error(new Error("SSE client stopped reading: stream dropped"));
        void end(false);
      }
    };

    const subscription = await this.#link.subscribe(kind, channel, onMessage);
    if (this.#closed) {
      // closeAll() ran while Redis was confirming: a stream opened now would
      // keep the server's shutdown waiting forever.
      await subscription.close();
      throw new RedisUnavailableError("Redis subscription refused: the bridge is closing");
    }
    controller.enqueue(encoder.encode(`data: ${kind},${channel},1\n\n`));
    for (const event of early) controller.enqueue(event);
    early = null;
    // Proxies and idle timeouts drop silent connections; the client ignores comments.
    const timer = setInterval(() => controller.enqueue(KEEP_ALIVE), this.#keepAliveMs);

    const endAndClose = () => end(true);
    end = async (closeBody) => {
      if (ended) return;
      ended = true;
      clearInterval(timer);
      this.#enders.delete(endAndClose);
      if (closeBody) {
        try {
          controller.close();
        } catch {
          // already closed, or cancelled by the client
        }
      }
      await subscription.close();
    };
    this.#enders.add(endAndClose);
    // Redis went away: end the stream (the client then stops silently, §8.4).
    void subscription.ended.then(endAndClose);
    return new Response(body, { headers: SSE_HEADERS });
  }

  /** Ends every open stream and releases its Redis connection. */
  async closeAll(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#enders].map((end) => end()));
  }
}
