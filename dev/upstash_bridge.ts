/**
 * A local Upstash Redis REST bridge: Upstash's HTTP protocol in front, a real
 * redis-server behind, so that unmodified `@upstash/redis` 1.39 and
 * `@upstash/ratelimit` 2.2 run in development and CI without an Upstash
 * account. The contract is docs/reference/upstash-rest-protocol.md; the pieces live in
 * `dev/upstash/`.
 *
 * Redis client: node-redis (`redis`), not ioredis. Picked by a pipelined
 * burst through this bridge: 10,000 SET/GET from 64 concurrent
 * `@upstash/redis` callers (auto-pipelined, ~32 commands per request), Deno
 * 2.9.6 on 2 shared cores, medians of 8 interleaved runs: node-redis 66k–67k
 * ops/s, ioredis 42k–44k ops/s (one `pipeline()` of `callBuffer` per
 * request). On the Redis side alone a 32-command batch cost about 70 CPU µs
 * with node-redis and 135 with ioredis. node-redis's `sendCommand` is also
 * raw, where ioredis rewrites `hgetall` replies into objects even through
 * `callBuffer`. node-redis's default 5 s per-command timeout is turned off
 * (`dev/upstash/redis_link.ts`): it arms a timer per command and tripled the cost.
 *
 * @example
 * ```ts
 * await using bridge = await startUpstashBridge({ redisPort: 6379, token: "T" });
 * const redis = new Redis({ url: bridge.url, token: bridge.token });
 * ```
 *
 * @module
 */
import { parseCommand, parseCommandList, parseJson } from "./upstash/commands.ts";
import type { ParsedCommand } from "./upstash/commands.ts";
import { BridgeRequestError, BridgeStartError, RedisUnavailableError } from "./upstash/errors.ts";
import { RedisLink } from "./upstash/redis_link.ts";
import { errorJson, resultJson } from "./upstash/resp_json.ts";
import type { RedisReply, ResponseEncoding } from "./upstash/resp_json.ts";
import { ScriptRegistry } from "./upstash/scripts.ts";
import type { ReplyFix } from "./upstash/scripts.ts";
import { EventStreams } from "./upstash/sse.ts";

export { BridgeRequestError, BridgeStartError, RedisUnavailableError };

/** Options for {@linkcode startUpstashBridge}. */
export interface UpstashBridgeOptions {
  /** Port of the redis-server behind the bridge. */
  redisPort: number;
  /** Host of the redis-server. @default "127.0.0.1" */
  redisHost?: string;
  /** The bearer token clients must send (`Authorization: Bearer <token>`). */
  token: string;
  /** Port to listen on (127.0.0.1 only); 0 or omitted picks a free one. @default 0 */
  port?: number;
  /** Interval of the `: keep-alive` comments on SSE streams. @default 15000 */
  sseKeepAliveMs?: number;
}

/** A running bridge; `await using` closes it. */
export interface UpstashBridge extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`, the URL to give `new Redis({ url })`. */
  readonly url: string;
  /** The bearer token the bridge accepts. */
  readonly token: string;
  /** The port the bridge listens on. */
  readonly port: number;
  /** Ends every SSE stream, stops the HTTP server and quits every Redis connection. */
  close(): Promise<void>;
}

const JSON_HEADERS = { "content-type": "application/json" } as const;

function jsonResponse(status: number, body: string, headers: HeadersInit = JSON_HEADERS): Response {
  return new Response(body, { status, headers });
}

/** Handles the protocol of one bridge; created once per `startUpstashBridge`. */
class BridgeHandler {
  readonly #authorization: string;
  readonly #link: RedisLink;
  readonly #scripts = new ScriptRegistry();
  readonly #streams: EventStreams;

  constructor(token: string, link: RedisLink, streams: EventStreams) {
    this.#authorization = `Bearer ${token}`;
    this.#link = link;
    this.#streams = streams;
  }

  async handle(req: Request): Promise<Response> {
    try {
      if (req.method !== "POST") {
        return jsonResponse(
          405,
          errorJson(
            `Method ${req.method} is not allowed: the Upstash REST bridge only accepts POST`,
          ),
          { ...JSON_HEADERS, allow: "POST" },
        );
      }
      // Same answer for a missing and a wrong token: Upstash sends 401 for both.
      if (req.headers.get("authorization") !== this.#authorization) {
        return jsonResponse(401, errorJson("Unauthorized: missing or invalid bearer token"));
      }
      const path = pathOf(req.url);
      const encoding: ResponseEncoding = req.headers.get("upstash-encoding")?.toLowerCase() ===
          "base64"
        ? "base64"
        : "text";
      if (path === "/") return await this.#single(req, encoding);
      if (path === "/pipeline") return await this.#batch(req, encoding, false);
      if (path === "/multi-exec") return await this.#batch(req, encoding, true);
      if (path.startsWith("/subscribe/")) return await this.#subscribe("subscribe", path);
      if (path.startsWith("/psubscribe/")) return await this.#subscribe("psubscribe", path);
      throw new BridgeRequestError(
        `ERR unknown path ${path}: use /, /pipeline, /multi-exec, /subscribe/<channel> or /psubscribe/<pattern>`,
        { status: 404 },
      );
    } catch (err) {
      if (err instanceof BridgeRequestError || err instanceof RedisUnavailableError) {
        return jsonResponse(err.status, errorJson(err.message));
      }
      // A bug of the bridge: still JSON, so the client shows the message.
      return jsonResponse(500, errorJson(`ERR Upstash REST bridge failure: ${String(err)}`));
    }
  }

  async #single(req: Request, encoding: ResponseEncoding): Promise<Response> {
    const command = parseCommand(parseJson(await req.text()));
    const fix = this.#scripts.prepare(command);
    const [reply] = await this.#link.exec([command]);
    const fixed = fix === undefined ? reply! : fix(reply!);
    // A failed command is a 400 with Redis's text (Upstash and SRH agree, §4).
    if (fixed instanceof Error) return jsonResponse(400, errorJson(fixed.message));
    return jsonResponse(200, resultJson(fixed, encoding));
  }

  async #batch(req: Request, encoding: ResponseEncoding, atomic: boolean): Promise<Response> {
    const commands = parseCommandList(parseJson(await req.text()));
    const fixes = this.#prepareScripts(commands);
    let replies: RedisReply[];
    if (atomic) {
      const exec = await this.#link.transaction(commands);
      // Nothing ran (EXECABORT): one error for the whole request (§6).
      if (exec instanceof Error) return jsonResponse(400, errorJson(exec.message));
      replies = exec;
    } else {
      replies = await this.#link.exec(commands);
    }
    let body = "[";
    for (let i = 0; i < replies.length; i++) {
      const fix = fixes?.[i];
      const reply = fix === undefined ? replies[i]! : fix(replies[i]!);
      if (i > 0) body += ",";
      body += reply instanceof Error ? errorJson(reply.message) : resultJson(reply, encoding);
    }
    return jsonResponse(200, body + "]");
  }

  /** Reply fixes by command index, or null when no command needs one (the common case). */
  #prepareScripts(commands: readonly ParsedCommand[]): (ReplyFix | undefined)[] | null {
    let fixes: (ReplyFix | undefined)[] | null = null;
    for (let i = 0; i < commands.length; i++) {
      const fix = this.#scripts.prepare(commands[i]!);
      if (fix !== undefined) (fixes ??= [])[i] = fix;
    }
    return fixes;
  }

  async #subscribe(kind: "subscribe" | "psubscribe", path: string): Promise<Response> {
    const raw = path.slice(kind.length + 2);
    let channel: string;
    try {
      // Slashes belong to the channel: the client appends it unencoded (§8.1).
      channel = decodeURIComponent(raw);
    } catch (err) {
      throw new BridgeRequestError(`ERR invalid percent-encoding in ${kind} path: ${raw}`, {
        cause: err,
      });
    }
    if (channel === "") throw new BridgeRequestError(`ERR missing ${kind} channel in the path`);
    return await this.#streams.open(kind, channel);
  }
}

/** The path of an absolute request URL, without the query; cheaper than `new URL()`. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}

/**
 * Starts a bridge on 127.0.0.1 in front of the redis-server at
 * `redisHost:redisPort`. Redis need not be up yet: every request connects
 * when no connection is ready, and answers 503 `{"error"}` while Redis is down.
 *
 * @throws {BridgeStartError} when the options are invalid or the port is taken.
 */
export async function startUpstashBridge(options: UpstashBridgeOptions): Promise<UpstashBridge> {
  const { redisPort, token, port = 0, redisHost = "127.0.0.1", sseKeepAliveMs = 15_000 } = options;
  if (!Number.isInteger(redisPort) || redisPort <= 0 || redisPort > 65535) {
    throw new BridgeStartError(`Cannot start the Upstash bridge: redisPort is ${redisPort}`);
  }
  if (typeof token !== "string" || token === "" || /\s/.test(token)) {
    throw new BridgeStartError(
      "Cannot start the Upstash bridge: token must be a non-empty string without whitespace",
    );
  }
  if (!(sseKeepAliveMs > 0)) {
    throw new BridgeStartError(
      `Cannot start the Upstash bridge: sseKeepAliveMs is ${sseKeepAliveMs}`,
    );
  }
  const link = new RedisLink({ host: redisHost, port: redisPort });
  const streams = new EventStreams(link, sseKeepAliveMs);
  const handler = new BridgeHandler(token, link, streams);
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve(
      { hostname: "127.0.0.1", port, onListen() {} },
      (req) => handler.handle(req),
    );
  } catch (err) {
    throw new BridgeStartError(`Cannot start the Upstash bridge on 127.0.0.1:${port}`, {
      cause: err,
    });
  }
  await link.warmUp();
  const actualPort = server.addr.port;
  let closing: Promise<void> | null = null;
  const close = () =>
    closing ??= (async () => {
      // Streams first: shutdown() waits for open responses, and a stream never ends by itself.
      await streams.closeAll();
      await server.shutdown();
      await link.close();
    })();
  return {
    url: `http://127.0.0.1:${actualPort}`,
    token,
    port: actualPort,
    close,
    [Symbol.asyncDispose]: close,
  };
}
