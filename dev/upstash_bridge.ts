/**
 * A local Upstash Redis REST bridge: Upstash's HTTP protocol in front, a real
 * redis-server behind, so that unmodified `@upstash/redis` 1.39 and
 * `@upstash/ratelimit` 2.2 run in development and CI without an Upstash
 * account. The contract is docs/reference/upstash-rest-protocol.md; the pieces live in
 * `dev/upstash/`.
 *
 * Redis client: node-redis (`redis`), not ioredis: it pushed a pipelined burst
 * through this bridge about half again as fast, at half the Redis CPU per
 * batch (docs/benchmarks.md, Design measurements). node-redis's
 * `sendCommand` is also raw, where ioredis rewrites `hgetall` replies into
 * objects even through `callBuffer`. node-redis's default 5 s per-command
 * timeout is turned off (`dev/upstash/redis_link.ts`): it arms a timer per
 * command and tripled the cost.
 *
 * Hardening (the bridge listens on loopback, but anything on the machine can
 * reach it): the bearer token is compared in constant time, request bodies
 * are capped (`maxBodyBytes`, 413 above), server administration (CONFIG,
 * DEBUG, MODULE, SHUTDOWN, SAVE, REPLICAOF, ACL, …) is refused like the
 * connection-state commands, and the redis-server behind it requires a
 * password (`redisPassword`, dev/redis_server.ts). Besides the JSON protocol it
 * speaks Upstash's path form for curl users (`GET /set/foo/bar`,
 * dev/upstash/path_form.ts) and sends `upstash-sync-token` on every response.
 *
 * @example
 * ```ts
 * await using bridge = await startUpstashBridge({ redisPort: 6379, token: "T" });
 * const redis = new Redis({ url: bridge.url, token: bridge.token });
 * ```
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createHash, timingSafeEqual } from "node:crypto";
import { parseCommand, parseCommandList, parseJson } from "./upstash/commands.ts";
import { pathFormCommand } from "./upstash/path_form.ts";
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
  /** Password of the redis-server (`RedisServer.password`). @default none */
  redisPassword?: string;
  /** Largest request body; larger → 413. @default 16_777_216 */
  maxBodyBytes?: number;
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

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Reads a request body of at most `maxBytes` (413 above), counting as it streams. */
async function readText(req: Request, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new BridgeRequestError(`ERR request body larger than ${maxBytes} bytes`, { status: 413 });
  if (Number(req.headers.get("content-length") ?? 0) > maxBytes) throw tooLarge();
  if (req.body === null) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of req.body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return new TextDecoder().decode(Buffer.concat(chunks));
}

/** Paths of the JSON protocol; any other path is the path form of a command. */
const PROTOCOL_PATHS = new Set(["/", "/pipeline", "/multi-exec"]);

/** Handles the protocol of one bridge; created once per `startUpstashBridge`. */
class BridgeHandler {
  readonly #token: Buffer;
  readonly #link: RedisLink;
  readonly #scripts = new ScriptRegistry();
  readonly #streams: EventStreams;
  readonly #maxBodyBytes: number;
  /**
   * The `upstash-sync-token` of every response: how many requests this bridge
   * has run. One redis-server serves every read, so a read always sees every
   * acknowledged write; the token lets the SDK's read-your-writes bookkeeping
   * run locally as it does against Upstash (docs/reference/upstash-rest-protocol.md §9).
   */
  #sync = 0;

  constructor(token: string, link: RedisLink, streams: EventStreams, maxBodyBytes: number) {
    this.#token = digest(token);
    this.#link = link;
    this.#streams = streams;
    this.#maxBodyBytes = maxBodyBytes;
  }

  /** Constant time: equal-length digests, so neither length nor prefix leaks. */
  #authorized(req: Request, url: URL | null): boolean {
    const header = req.headers.get("authorization");
    const offered = header !== null && header.startsWith("Bearer ")
      ? header.slice(7)
      : url?.searchParams.get("_token") ?? null;
    return offered !== null && timingSafeEqual(digest(offered), this.#token);
  }

  async handle(req: Request): Promise<Response> {
    const res = await this.#handle(req);
    // Every answer, errors and SSE included, carries the token (the SDK stores
    // the header of each response and sends it back).
    res.headers.set("upstash-sync-token", String(++this.#sync));
    return res;
  }

  async #handle(req: Request): Promise<Response> {
    try {
      const path = pathOf(req.url);
      const pathForm = !PROTOCOL_PATHS.has(path) && !path.startsWith("/subscribe/") &&
        !path.startsWith("/psubscribe/");
      if (req.method !== "POST" && !(pathForm && req.method === "GET")) {
        return jsonResponse(
          405,
          errorJson(
            `Method ${req.method} is not allowed: the Upstash REST bridge accepts POST, and GET for the path form (/<command>/<arg>/…)`,
          ),
          { ...JSON_HEADERS, allow: pathForm ? "GET, POST" : "POST" },
        );
      }
      const url = pathForm ? new URL(req.url) : null;
      // Same answer for a missing and a wrong token: Upstash sends 401 for both.
      if (!this.#authorized(req, url)) {
        return jsonResponse(401, errorJson("Unauthorized: missing or invalid bearer token"));
      }
      const encoding: ResponseEncoding = req.headers.get("upstash-encoding")?.toLowerCase() ===
          "base64"
        ? "base64"
        : "text";
      if (url !== null) {
        const body = req.method === "POST" ? await readText(req, this.#maxBodyBytes) : null;
        return await this.#run(pathFormCommand(url, body), encoding);
      }
      if (path === "/") {
        return await this.#run(
          parseCommand(parseJson(await readText(req, this.#maxBodyBytes))),
          encoding,
        );
      }
      if (path === "/pipeline") return await this.#batch(req, encoding, false);
      if (path === "/multi-exec") return await this.#batch(req, encoding, true);
      if (path.startsWith("/subscribe/")) return await this.#subscribe("subscribe", path);
      return await this.#subscribe("psubscribe", path);
    } catch (err) {
      if (err instanceof BridgeRequestError || err instanceof RedisUnavailableError) {
        return jsonResponse(err.status, errorJson(err.message));
      }
      // A bug of the bridge: still JSON, so the client shows the message.
      return jsonResponse(500, errorJson(`ERR Upstash REST bridge failure: ${String(err)}`));
    }
  }

  async #run(command: ParsedCommand, encoding: ResponseEncoding): Promise<Response> {
    const fix = this.#scripts.prepare(command);
    const [reply] = await this.#link.exec([command]);
    const fixed = fix === undefined ? reply! : fix(reply!);
    // A failed command is a 400 with Redis's text (Upstash and SRH agree, §4).
    if (fixed instanceof Error) return jsonResponse(400, errorJson(fixed.message));
    return jsonResponse(200, resultJson(fixed, encoding));
  }

  async #batch(req: Request, encoding: ResponseEncoding, atomic: boolean): Promise<Response> {
    const commands = parseCommandList(parseJson(await readText(req, this.#maxBodyBytes)));
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
  const {
    redisPort,
    token,
    port = 0,
    redisHost = "127.0.0.1",
    sseKeepAliveMs = 15_000,
    maxBodyBytes = 16_777_216,
  } = options;
  if (!Number.isInteger(redisPort) || redisPort <= 0 || redisPort > 65535) {
    throw new BridgeStartError(`Cannot start the Upstash bridge: redisPort is ${redisPort}`);
  }
  if (typeof token !== "string" || token === "" || /\s/.test(token)) {
    throw new BridgeStartError(
      "Cannot start the Upstash bridge: token must be a non-empty string without whitespace",
    );
  }
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes <= 0) {
    throw new BridgeStartError(`Cannot start the Upstash bridge: maxBodyBytes is ${maxBodyBytes}`);
  }
  if (!(sseKeepAliveMs > 0)) {
    throw new BridgeStartError(
      `Cannot start the Upstash bridge: sseKeepAliveMs is ${sseKeepAliveMs}`,
    );
  }
  const link = new RedisLink({
    host: redisHost,
    port: redisPort,
    ...(options.redisPassword === undefined ? {} : { password: options.redisPassword }),
  });
  const streams = new EventStreams(link, sseKeepAliveMs);
  const handler = new BridgeHandler(token, link, streams, maxBodyBytes);
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
