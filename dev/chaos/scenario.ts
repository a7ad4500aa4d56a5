/**
 * Chaos scenarios: a timeline of faults, declared as data. The built-in
 * `quick` (one short fault of each kind, for `deno task test`) and `full`
 * scenarios are below; a user's JSON file has the same shape
 * (docs/reliability.md lists the fields).
 *
 * @module
 */
import { z } from "zod";

/** The processes a fault can target. */
export const PROCESSES = ["edge-1", "edge-2", "worker-1", "worker-2"] as const;
const proc = z.enum(PROCESSES);
const seconds = z.number().min(0).max(3600);

/** One fault. `at_s` is its start, seconds after the load began. */
export const FaultSpec = z.discriminatedUnion("kind", [
  // kill -9: the supervisor restarts the process.
  z.object({ kind: z.literal("kill9"), at_s: seconds, target: proc }).strict(),
  // SIGTERM: graceful stop, then the supervisor restarts it.
  z.object({ kind: z.literal("sigterm"), at_s: seconds, target: proc }).strict(),
  // SIGSTOP for `for_s`, then SIGCONT: a partition or a long GC pause.
  z.object({ kind: z.literal("pause"), at_s: seconds, target: proc, for_s: seconds }).strict(),
  // redis-server stopped for `for_s`, then started on the same port and data.
  z.object({ kind: z.literal("redis_down"), at_s: seconds, for_s: seconds }).strict(),
  // The PostgreSQL server process stopped for `for_s`, then started again.
  z.object({ kind: z.literal("postgres_down"), at_s: seconds, for_s: seconds }).strict(),
  // The TCP fault proxy between the processes and Redis (the bridge) or Postgres (the Neon proxy).
  z.object({
    kind: z.literal("network"),
    at_s: seconds,
    for_s: seconds,
    target: z.enum(["redis", "postgres"]),
    fault: z.enum(["latency", "blackhole", "reset"]),
    latency_ms: z.number().int().min(0).max(60_000).optional(),
  }).strict(),
  // Every held lease expires now: workers must abandon, others take the tasks over.
  z.object({ kind: z.literal("expire_leases"), at_s: seconds }).strict(),
  // `rps` extra requests per second on one route of one edge.
  z.object({
    kind: z.literal("flood"),
    at_s: seconds,
    for_s: seconds,
    target: z.enum(["edge-1", "edge-2"]),
    route: z.enum(["/v1/leads", "/ready"]).default("/v1/leads"),
    rps: z.number().int().min(1).max(5000).default(300),
  }).strict(),
]);
export type FaultSpec = z.output<typeof FaultSpec>;

/** A scenario: load for `duration_s`, the faults on its timeline. */
export const Scenario = z.object({
  name: z.string().min(1).max(100),
  duration_s: z.number().min(1).max(7200),
  /** Load client processes per kind (dev/chaos/load.ts, dev/chaos/follower.ts). */
  load: z.object({
    lead_writers: z.number().int().min(0).max(32).default(2),
    task_writers: z.number().int().min(0).max(32).default(1),
    /** Requests per second per lead or task writer. */
    rps: z.number().min(0.1).max(1000).default(10),
    /** Outreach email writers (one new recipient per request). */
    email_writers: z.number().int().min(0).max(32).default(1),
    /** Appointment writers (one new attendee per request). */
    booking_writers: z.number().int().min(0).max(32).default(1),
    /** `POST /v1/events` writers (batches of 5 events with client ids). */
    event_writers: z.number().int().min(0).max(32).default(1),
    /** Requests per second per email, booking and event writer. */
    mix_rps: z.number().min(0.1).max(100).default(2),
    /** WebSocket followers of `tasks` and `leads`. */
    followers: z.number().int().min(0).max(32).default(2),
    /** Each follower reconnects (with `since`) this often, besides when its socket drops. */
    reconnect_every_s: z.number().min(1).max(3600).default(15),
  }).strict().prefault({}),
  faults: z.array(FaultSpec).max(1000),
}).strict().superRefine((s, ctx) => {
  s.faults.forEach((f, i) => {
    const end = f.at_s + ("for_s" in f ? f.for_s : 0);
    if (end > s.duration_s) {
      ctx.addIssue({
        code: "custom",
        path: ["faults", i],
        message: `ends at ${end} s, after the load (${s.duration_s} s)`,
      });
    }
  });
});
export type Scenario = z.output<typeof Scenario>;

/** One short fault of each kind; finishes (with startup and verification) in under two minutes. */
export const QUICK: Scenario = Scenario.parse({
  name: "quick",
  duration_s: 30,
  load: {
    lead_writers: 1,
    task_writers: 1,
    rps: 6,
    email_writers: 1,
    booking_writers: 1,
    event_writers: 1,
    mix_rps: 2,
    followers: 1,
    reconnect_every_s: 5,
  },
  faults: [
    { kind: "kill9", at_s: 1, target: "worker-1" },
    { kind: "kill9", at_s: 3, target: "edge-1" },
    { kind: "pause", at_s: 6, target: "edge-2", for_s: 2 },
    { kind: "sigterm", at_s: 9, target: "worker-2" },
    { kind: "redis_down", at_s: 10, for_s: 2 },
    { kind: "postgres_down", at_s: 14, for_s: 3 },
    { kind: "network", at_s: 19, for_s: 2, target: "postgres", fault: "latency", latency_ms: 300 },
    { kind: "network", at_s: 21, for_s: 1, target: "redis", fault: "reset" },
    { kind: "expire_leases", at_s: 23 },
    { kind: "flood", at_s: 24, for_s: 1, target: "edge-1", route: "/v1/leads", rps: 100 },
    { kind: "sigterm", at_s: 27, target: "edge-2" },
  ],
});

/** The full default campaign: every kind, longer outages, both targets. */
export const FULL: Scenario = Scenario.parse({
  name: "full",
  duration_s: 300,
  // Sized for a 2-core machine that also hosts the stack: 4 processes, 6 load clients, 2 followers.
  load: {
    lead_writers: 2,
    task_writers: 1,
    rps: 8,
    email_writers: 1,
    booking_writers: 1,
    event_writers: 1,
    mix_rps: 2,
    followers: 2,
    reconnect_every_s: 15,
  },
  faults: [
    { kind: "kill9", at_s: 10, target: "worker-1" },
    { kind: "kill9", at_s: 25, target: "edge-1" },
    { kind: "pause", at_s: 40, target: "edge-2", for_s: 12 },
    { kind: "pause", at_s: 60, target: "worker-2", for_s: 40 },
    { kind: "sigterm", at_s: 105, target: "worker-1" },
    { kind: "sigterm", at_s: 112, target: "edge-1" },
    { kind: "redis_down", at_s: 120, for_s: 10 },
    { kind: "postgres_down", at_s: 145, for_s: 10 },
    {
      kind: "network",
      at_s: 170,
      for_s: 10,
      target: "postgres",
      fault: "latency",
      latency_ms: 500,
    },
    { kind: "network", at_s: 185, for_s: 8, target: "postgres", fault: "blackhole" },
    { kind: "network", at_s: 200, for_s: 8, target: "redis", fault: "latency", latency_ms: 300 },
    { kind: "network", at_s: 215, for_s: 5, target: "redis", fault: "reset" },
    { kind: "expire_leases", at_s: 230 },
    { kind: "flood", at_s: 240, for_s: 10, target: "edge-1", route: "/v1/leads", rps: 500 },
    { kind: "kill9", at_s: 260, target: "worker-2" },
    { kind: "sigterm", at_s: 270, target: "edge-2" },
  ],
});

/** Reads a user's scenario file; a readable error when it is not one. */
export async function loadScenario(path: string): Promise<Scenario> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    throw new TypeError(`Cannot read scenario ${path}: ${(err as Error).message}`);
  }
  const parsed = Scenario.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new TypeError(`Invalid scenario ${path}:\n  ${issues.join("\n  ")}`);
  }
  return parsed.data;
}
