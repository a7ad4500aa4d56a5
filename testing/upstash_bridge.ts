/**
 * Test fixture for the Upstash bridge: a throwaway redis-server in a temporary
 * directory plus a bridge in front of it, torn down by `await using`, and a
 * raw-HTTP helper with the default headers of docs/reference/upstash-rest-protocol.md §13.
 *
 * @module
 */
import { RedisServer } from "../dev/redis_server.ts";
import { startUpstashBridge } from "../dev/upstash_bridge.ts";
import type { UpstashBridge, UpstashBridgeOptions } from "../dev/upstash_bridge.ts";

/** The token every fixture bridge accepts. */
export const TOKEN = "T";

/** Headers of every conformance case (§13): base64 mode, empty sync token. */
export const DEFAULT_HEADERS: Readonly<Record<string, string>> = {
  authorization: `Bearer ${TOKEN}`,
  "content-type": "application/json",
  "upstash-encoding": "base64",
  "upstash-sync-token": "",
};

/** A parsed non-SSE answer. */
export interface JsonAnswer {
  status: number;
  contentType: string | null;
  /** The body as sent, to check it is complete JSON. */
  text: string;
  /** `JSON.parse(text)`; the helper fails the test when the body is not JSON. */
  body: unknown;
}

/** Options of {@linkcode BridgeFixture.post}. */
export interface PostOptions {
  /** Drop the upstash-encoding header ("raw" mode of §13). @default false */
  raw?: boolean;
  /** Headers replacing or adding to the defaults; `null` removes one. */
  headers?: Record<string, string | null>;
  /** HTTP method. @default "POST" */
  method?: string;
}

/** A redis-server and a bridge in front of it. */
export interface BridgeFixture extends AsyncDisposable {
  readonly redis: RedisServer;
  readonly bridge: UpstashBridge;
  /** Sends `body` (JSON-encoded unless a string) and parses the JSON answer. */
  post(path: string, body: unknown, options?: PostOptions): Promise<JsonAnswer>;
}

/** Builds the request headers of a raw-HTTP case. */
export function requestHeaders(options: PostOptions = {}): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(DEFAULT_HEADERS)) {
    if (!(options.raw && name === "upstash-encoding")) headers.set(name, value);
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  return headers;
}

/**
 * Starts redis-server (data in a new temporary directory) and a bridge. On
 * dispose it closes the bridge, stops Redis and removes the directory, also
 * when the test failed.
 */
export async function startBridgeFixture(
  fixtureOptions: Partial<UpstashBridgeOptions> & {
    /** AOF policy of the redis-server. @default "no" (tests need no durability) */
    appendfsync?: "everysec" | "always" | "no";
  } = {},
): Promise<BridgeFixture> {
  const { appendfsync = "no", ...options } = fixtureOptions;
  const dir = await Deno.makeTempDir({ prefix: "upstash_bridge_test_" });
  let redis: RedisServer | null = null;
  let bridge: UpstashBridge | null = null;
  const dispose = async () => {
    try {
      await bridge?.close();
    } finally {
      try {
        await redis?.stop();
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    }
  };
  try {
    redis = await RedisServer.start({ dir, appendfsync });
    bridge = await startUpstashBridge({
      redisPort: redis.port,
      redisPassword: redis.password,
      token: TOKEN,
      ...options,
    });
  } catch (err) {
    await dispose();
    throw err;
  }
  const url = bridge.url;
  return {
    redis,
    bridge,
    async post(path, body, postOptions = {}) {
      const res = await fetch(url + path, {
        method: postOptions.method ?? "POST",
        headers: requestHeaders(postOptions),
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new Error(`${path} answered ${res.status} with a body that is not JSON: ${text}`, {
          cause: err,
        });
      }
      return {
        status: res.status,
        contentType: res.headers.get("content-type"),
        text,
        body: parsed,
      };
    },
    [Symbol.asyncDispose]: dispose,
  };
}

/** True for exactly `{"error": "<string>"}`: no `result` key, nothing else. */
export function isErrorBody(body: unknown): boolean {
  return typeof body === "object" && body !== null && !Array.isArray(body) &&
    Object.keys(body).length === 1 && typeof (body as { error?: unknown }).error === "string";
}

/** Base64 of the UTF-8 bytes of `text`, as the bridge encodes strings. */
export function b64(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
