/**
 * A loopback upstream whose behaviour the test switches, for the breaker
 * suites, and `outcome()` to read a call's status or error name.
 *
 * @module
 */
import { waitUntil } from "./wait.ts";

/** How the upstream answers. */
export type UpstreamMode =
  | { status: number; delayMs?: number; headers?: Record<string, string> }
  | { hang: true };

/** A tiny HTTP server on 127.0.0.1 that counts requests. */
export interface Upstream extends AsyncDisposable {
  readonly url: string;
  mode: UpstreamMode;
  /** Requests received since the last `resetCount()`. */
  readonly count: number;
  resetCount(): void;
  /** Resolves when `count` reaches `n`. */
  waitForCount(n: number, timeoutMs?: number): Promise<void>;
  /** Answers every hanging request with 200 and stops serving. */
  close(): Promise<void>;
}

/** Starts an upstream answering 200 until `mode` is changed. */
export function startUpstream(): Upstream {
  let count = 0;
  const hanging = new Set<() => void>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async () => {
    count++;
    const mode = upstream.mode;
    if ("hang" in mode) {
      await new Promise<void>((resolve) => hanging.add(resolve));
      return new Response("released");
    }
    if (mode.delayMs) await new Promise((r) => setTimeout(r, mode.delayMs));
    return new Response(`status ${mode.status}`, { status: mode.status, headers: mode.headers });
  });
  const close = async () => {
    for (const release of hanging) release();
    hanging.clear();
    await server.shutdown();
  };
  const upstream: Upstream = {
    url: `http://127.0.0.1:${server.addr.port}`,
    mode: { status: 200 },
    get count() {
      return count;
    },
    resetCount() {
      count = 0;
    },
    waitForCount: (n, timeoutMs = 5000) =>
      waitUntil(() => count >= n, { timeoutMs, what: `${n} upstream requests` }),
    close,
    [Symbol.asyncDispose]: close,
  };
  return upstream;
}

/** Fetches `url` through `fetcher`, returning the status or the error name. */
export async function outcome(p: Promise<Response>): Promise<string> {
  try {
    const res = await p;
    await res.body?.cancel();
    return String(res.status);
  } catch (err) {
    return (err as Error).name;
  }
}
