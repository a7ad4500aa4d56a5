/**
 * A chaos load client, run as its own process by dev/chaos/main.ts:
 *
 *   deno run -A dev/chaos/load.ts <json options>
 *
 * It writes through the edges with an Idempotency-Key per operation and
 * retries the SAME key (on either edge) until the answer is definitive
 * (2xx, or a 4xx other than 409/429), like a well-behaved client. Each
 * attempt and each operation's final answer is one JSON line on stdout; the
 * orchestrator keeps them for the report and the verification.
 *
 * @module
 */

/** Options passed as the first argument. */
export interface LoadOptions {
  kind: "leads" | "tasks";
  /** Unique per client: part of every key and lead name. */
  id: string;
  edges: string[];
  token: string;
  rps: number;
  durationMs: number;
  /** After the load ends, how long unfinished operations keep retrying. */
  settleMs: number;
}

/** One attempt's outcome. */
export interface AttemptLine {
  t: "attempt";
  at: number;
  op: string;
  edge: number;
  /** HTTP status, or 0 for a network error. */
  status: number;
  retry_after: boolean;
  code: string | null;
}

/** One operation's final answer (`status` 0: no definitive answer before the settle deadline). */
export interface DoneLine {
  t: "done";
  op: string;
  kind: "leads" | "tasks";
  name: string;
  status: number;
  /** Task ids or lead ids seen across the attempts (more than one is a duplicate). */
  ids: string[];
}

const RETRYABLE = new Set([0, 409, 425, 429, 500, 502, 503, 504]);

async function attempt(
  o: LoadOptions,
  edge: number,
  op: string,
  body: unknown,
  path: string,
): Promise<{ status: number; json: Record<string, unknown> | null; retryAfter: boolean }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 15_000);
  try {
    const res = await fetch(`${o.edges[edge]}${path}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${o.token}`,
        "content-type": "application/json",
        "idempotency-key": op,
      },
      body: JSON.stringify(body),
      signal: controller.signal,
    });
    const text = await res.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text);
    } catch {
      // not JSON
    }
    return { status: res.status, json, retryAfter: res.headers.has("retry-after") };
  } catch {
    return { status: 0, json: null, retryAfter: false };
  } finally {
    clearTimeout(timer);
  }
}

function print(line: AttemptLine | DoneLine): void {
  console.log(JSON.stringify(line));
}

async function operation(o: LoadOptions, n: number, deadline: number): Promise<void> {
  const op = `${o.id}-${n}`;
  const name = `chaos ${op}`;
  const [path, body] = o.kind === "leads"
    ? ["/v1/leads", { name, city: "Chaosville", source: "chaos" }]
    : ["/v1/tasks", { type: "noop", payload: { echo: name } }];
  const ids = new Set<string>();
  let edge = n % o.edges.length;
  let final = 0;
  for (let i = 0; Date.now() < deadline; i++) {
    const r = await attempt(o, edge, op, body, path);
    const code = typeof r.json?.code === "string" ? r.json.code : null;
    print({
      t: "attempt",
      at: Date.now(),
      op,
      edge,
      status: r.status,
      retry_after: r.retryAfter,
      code,
    });
    const id = r.json?.task_id ?? (r.status === 201 ? r.json?.id : undefined);
    if (typeof id === "string") ids.add(id);
    if (!RETRYABLE.has(r.status)) {
      final = r.status;
      break;
    }
    // Another edge next time: the one that failed may be down.
    edge = (edge + 1) % o.edges.length;
    await new Promise((res) => setTimeout(res, Math.min(2_000, 100 * 2 ** Math.min(i, 4))));
  }
  print({ t: "done", op, kind: o.kind, name, status: final, ids: [...ids] });
}

if (import.meta.main) {
  const o = JSON.parse(Deno.args[0] ?? "{}") as LoadOptions;
  const start = Date.now();
  const stopAt = start + o.durationMs;
  const deadline = stopAt + o.settleMs;
  const running = new Set<Promise<void>>();
  const gap = 1000 / o.rps;
  for (let n = 0; Date.now() < stopAt; n++) {
    const p = operation(o, n, deadline).finally(() => running.delete(p));
    running.add(p);
    const next = start + (n + 1) * gap;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  await Promise.all(running);
}
