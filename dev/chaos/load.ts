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
 * Kinds: `leads` (POST /v1/leads), `tasks` (a `noop` task), `emails` (an
 * `intro` outreach email to a recipient unique to the operation), `bookings`
 * (an appointment whose attendee is unique to the operation), `events`
 * (POST /v1/events, a batch of `page_view` events with client ids and no
 * Idempotency-Key: the ids are what makes a resend safe). Emails, bookings
 * and events use the fixture leads in `leadIds` (one per operation for
 * emails and bookings: one email per lead and day, one booking per lead and
 * day are the platform's own rules, which the campaign does not test).
 *
 * @module
 */

/** What a load client writes. */
export type LoadKind = "leads" | "tasks" | "emails" | "bookings" | "events";

/** Events per `POST /v1/events` batch of the `events` kind. */
export const EVENTS_PER_BATCH = 5;

/** The recipient of an `emails` operation, or the attendee of a `bookings` one. */
export function recipientOf(op: string): string {
  return `${op.toLowerCase().replace(/[^a-z0-9-]/g, "-")}@chaos.example.com`;
}

/** Options passed as the first argument. */
export interface LoadOptions {
  kind: LoadKind;
  /** Unique per client: part of every key and lead name. */
  id: string;
  edges: string[];
  token: string;
  rps: number;
  durationMs: number;
  /** After the load ends, how long unfinished operations keep retrying. */
  settleMs: number;
  /** Fixture leads of `emails`, `bookings` and `events` (operation n uses lead n mod length). */
  leadIds?: string[];
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
  kind: LoadKind;
  /** Lead name (`leads`), recipient (`emails`), attendee (`bookings`), echo (`tasks`), batch (`events`). */
  name: string;
  status: number;
  /** Task ids or lead ids seen across the attempts (more than one is a duplicate). */
  ids: string[];
  /** `events`: the client ids of the batch (a final 200 acknowledged those it did not reject). */
  events?: string[];
  /** `events`: ids of the batch the final 200 rejected (none expected). */
  rejected?: string[];
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
  const headers: Record<string, string> = {
    authorization: `Bearer ${o.token}`,
    "content-type": "application/json",
  };
  if (o.kind !== "events") headers["idempotency-key"] = op;
  try {
    const res = await fetch(`${o.edges[edge]}${path}`, {
      method: "POST",
      headers,
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

/** The request of operation `n`: path, body, the name the verification finds it by. */
export function requestOf(
  o: Pick<LoadOptions, "kind" | "leadIds">,
  op: string,
  n: number,
  now: number,
): { path: string; body: unknown; name: string; events?: string[] } {
  const lead = () => {
    const ids = o.leadIds ?? [];
    if (ids.length === 0) throw new RangeError(`A ${o.kind} load client needs leadIds`);
    return ids[n % ids.length]!;
  };
  switch (o.kind) {
    case "leads": {
      const name = `chaos ${op}`;
      return { path: "/v1/leads", body: { name, city: "Chaosville", source: "chaos" }, name };
    }
    case "tasks": {
      const name = `chaos ${op}`;
      return { path: "/v1/tasks", body: { type: "noop", payload: { echo: name } }, name };
    }
    case "emails": {
      const to = recipientOf(op);
      const body = {
        lead_id: lead(),
        template: "intro",
        to,
        variables: { sender_name: "Chaos Monkey" },
      };
      return { path: "/v1/outreach/emails", body, name: to };
    }
    case "bookings": {
      const to = recipientOf(op);
      // Tomorrow (UTC), so the booking is in the future whenever it runs.
      const startsAt = new Date(Math.floor(now / 86_400_000 + 1) * 86_400_000 + 36_000_000);
      const body = {
        lead_id: lead(),
        starts_at: startsAt.toISOString(),
        duration_min: 30,
        attendee_email: to,
        confirmation: { sender_name: "Chaos Monkey" },
      };
      return { path: "/v1/appointments", body, name: to };
    }
    case "events": {
      const events = Array.from({ length: EVENTS_PER_BATCH }, () => crypto.randomUUID());
      const time = new Date(now).toISOString();
      const body = {
        events: events.map((id) => ({
          id,
          time,
          lead_id: lead(),
          event_type: "page_view",
          event_data: { op },
          source: "chaos",
        })),
      };
      return { path: "/v1/events", body, name: op, events };
    }
  }
}

/** True when a 409 is the in-progress answer of an Idempotency-Key (retry), not a verdict. */
function inProgress(status: number, code: string | null): boolean {
  return status === 409 && (code === null || code === "idempotency-request-in-progress");
}

async function operation(o: LoadOptions, n: number, deadline: number): Promise<void> {
  const op = `${o.id}-${n}`;
  const { path, body, name, events } = requestOf(o, op, n, Date.now());
  const ids = new Set<string>();
  let edge = n % o.edges.length;
  let final = 0;
  let rejected: string[] | undefined;
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
    // A 409 that is a verdict (appointment-exists, lead-not-interested) ends the operation.
    if (!RETRYABLE.has(r.status) || (r.status === 409 && !inProgress(r.status, code))) {
      final = r.status;
      if (events !== undefined && r.status === 200) {
        const listed = (k: string) =>
          ((r.json?.[k] ?? []) as { id?: string }[]).map((e) => String(e.id));
        const ok = new Set([...listed("stored"), ...listed("duplicates")]);
        rejected = events.filter((e) => !ok.has(e));
      }
      break;
    }
    // Another edge next time: the one that failed may be down.
    edge = (edge + 1) % o.edges.length;
    await new Promise((res) => setTimeout(res, Math.min(2_000, 100 * 2 ** Math.min(i, 4))));
  }
  print({ t: "done", op, kind: o.kind, name, status: final, ids: [...ids], events, rejected });
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
