/**
 * `deno task chaos [--quick | --scenario=FILE]`: breaks a
 * running platform on purpose, under load, and checks that nothing was lost
 * or applied twice (docs/reliability.md).
 *
 * 1. Starts its own stack, fault proxies, two edges and two workers
 *    (dev/chaos/cluster.ts), and load client processes (dev/chaos/load.ts).
 * 2. Applies the scenario's faults on their timeline (dev/chaos/faults.ts),
 *    with a progress line every few seconds on stderr.
 * 3. Verifies (dev/chaos/verify.ts): acknowledged writes exactly once, tasks
 *    terminal, breakers closed again, no process left behind.
 * 4. Reports one JSON line on stdout (the bench convention) and a human
 *    summary per fault on stderr; exits 1 on any loss, duplicate,
 *    undocumented 5xx, breaker left open or leaked process.
 *
 * @module
 */
import { Pool } from "@neondatabase/serverless";
import { parseConfig } from "../../shared/config/mod.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import type { BreakerTransition } from "../../shared/breakers/types.ts";
import { createRedis } from "../../shared/deps.ts";
import { poolFor } from "../../shared/db/pool.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import type { Topic } from "../../shared/ws/topics.ts";
import { forEachLine } from "../lines.ts";
import { mintDevToken } from "../token.ts";
import { summariseBreakers, timeline } from "./breaker_timeline.ts";
import { type Cluster, startCluster } from "./cluster.ts";
import { DRAIN } from "./drain.ts";
import { verifyEffects } from "./effects_check.ts";
import { checkTopic, collectFeedTruth } from "./feed_check.ts";
import { applyFault, describeFault } from "./faults.ts";
import type { FollowerOptions, FollowerReport } from "./follower.ts";
import type { AttemptLine, DoneLine, LoadKind, LoadOptions } from "./load.ts";
import { FULL, loadScenario, QUICK, type Scenario } from "./scenario.ts";
import { faultStats, outcomeOf, verify } from "./verify.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const say = (m: string) => console.error(`[chaos] ${m}`);

/** Parsed command line. */
export interface ChaosArgs {
  scenario: "quick" | "full" | { file: string };
}

/** Parses the flags; TypeError with a usage line on anything else. */
export function parseChaosArgs(args: readonly string[]): ChaosArgs {
  const out: ChaosArgs = { scenario: "full" };
  for (const a of args) {
    if (a === "--quick") out.scenario = "quick";
    else if (a.startsWith("--scenario=") && a.length > 11) out.scenario = { file: a.slice(11) };
    else {
      throw new TypeError(
        `Unknown argument ${JSON.stringify(a)} ` +
          "(usage: deno task chaos [--quick | --scenario=FILE]); it always starts its own " +
          "loopback stack and never touches configured services",
      );
    }
  }
  return out;
}

interface FaultRun {
  description: string;
  kind: string;
  start: number;
  end: number;
  error: string | null;
}

function processAlive(pid: number): boolean {
  try {
    return !/^State:\s+[XZ]/m.test(Deno.readTextFileSync(`/proc/${pid}/status`));
  } catch {
    return false;
  }
}

/**
 * Runs `script` (a chaos client under dev/chaos/) with `options` as its
 * argument, handing each JSON line of its stdout to `onLine`; resolves when
 * it has exited and its output is read.
 */
function chaosClient<Line>(
  script: string,
  options: unknown,
  onLine: (line: Line) => void,
): Promise<void> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", `dev/chaos/${script}`, JSON.stringify(options)],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = forEachLine(child.stdout, (line) => onLine(JSON.parse(line) as Line));
  return Promise.all([lines, child.status]).then(() => {});
}

/** Spawns one load client; its JSON lines go to `attempts` and `done`. */
function loadClient(
  options: LoadOptions,
  attempts: AttemptLine[],
  done: DoneLine[],
): Promise<void> {
  return chaosClient<AttemptLine | DoneLine>("load.ts", options, (parsed) => {
    if (parsed.t === "attempt") attempts.push(parsed);
    else done.push(parsed);
  });
}

/** Spawns one WebSocket follower; its report goes to `reports`. */
function followerClient(options: FollowerOptions, reports: FollowerReport[]): Promise<void> {
  return chaosClient<FollowerReport>("follower.ts", options, (parsed) => {
    if (parsed.t === "follower") reports.push(parsed);
  });
}

/**
 * Fixture leads for the email, booking and event writers, inserted directly
 * (their creation is not what those writers test): `count` per writer.
 */
async function fixtureLeads(sql: Pool, count: number): Promise<string[]> {
  const { rows } = await sql.query<{ id: string }>(
    `INSERT INTO businesses (name, city, source, external_id)
     SELECT 'chaos fixture ' || g, 'Chaosville', 'chaos_fixture', $2 || '-' || g
       FROM generate_series(1, $1::int) AS g
     RETURNING id`,
    [count, crypto.randomUUID()],
  );
  return rows.map((r) => r.id);
}

const FEED_TOPICS: Topic[] = ["tasks", "leads"];

async function run(scenario: Scenario): Promise<number> {
  const began = Date.now();
  say(`scenario ${scenario.name}: ${scenario.faults.length} faults over ${scenario.duration_s} s`);
  const cluster: Cluster = await startCluster(say);
  const config = parseConfig(cluster.env);
  const redis = createRedis(cluster.stack.settings.redis);
  const sql: Pool = poolFor(cluster.stack.settings.database, { max: 2, onError: () => {} });
  const transitions: BreakerTransition[] = [];
  const breakers = createBreakerRegistry({ redis, policies: config.breakerPolicies });
  let loadStart: number | null = null;
  breakers.events.addEventListener("transition", (e) => {
    const t = (e as CustomEvent<BreakerTransition>).detail;
    transitions.push(t);
    if (loadStart !== null && t.source === "redis") {
      say(
        `t=${Math.round((t.at - loadStart) / 100) / 10}s breaker ${t.name} ${t.from} → ${t.to}` +
          ` (${t.reason ?? "?"})`,
      );
    }
  });
  const pids = new Set<number>();
  const trackPids = setInterval(() => {
    for (const p of Object.values(cluster.processes)) if (p.pid !== null) pids.add(p.pid);
  }, 100);
  let code = 1;
  try {
    await breakers.start();
    const token = await mintDevToken(config.auth, { sub: "sa:minerva", ttlS: 3 * 3600 });
    const attempts: AttemptLine[] = [];
    const done: DoneLine[] = [];
    const durationMs = scenario.duration_s * 1000;
    const settleMs = 60_000;
    const clients: Promise<void>[] = [];
    const base = { edges: cluster.edges, token, rps: scenario.load.rps, durationMs, settleMs };
    for (let i = 0; i < scenario.load.lead_writers; i++) {
      clients.push(loadClient({ ...base, kind: "leads", id: `L${i}-${began}` }, attempts, done));
    }
    for (let i = 0; i < scenario.load.task_writers; i++) {
      clients.push(loadClient({ ...base, kind: "tasks", id: `T${i}-${began}` }, attempts, done));
    }
    const perWriter = Math.ceil(scenario.load.mix_rps * scenario.duration_s) + 5;
    const mix: [LoadKind, string, number][] = [
      ["emails", "E", scenario.load.email_writers],
      ["bookings", "B", scenario.load.booking_writers],
      ["events", "V", scenario.load.event_writers],
    ];
    for (const [kind, letter, writers] of mix) {
      for (let i = 0; i < writers; i++) {
        const leadIds = await fixtureLeads(sql, perWriter);
        clients.push(loadClient(
          {
            ...base,
            rps: scenario.load.mix_rps,
            kind,
            id: `${letter}${i}-${began}`,
            leadIds,
          },
          attempts,
          done,
        ));
      }
    }
    const followerReports: FollowerReport[] = [];
    const truth = collectFeedTruth(redis, FEED_TOPICS);
    for (let i = 0; i < scenario.load.followers; i++) {
      clients.push(followerClient({
        id: `F${i}`,
        edges: i % 2 === 0 ? cluster.edges : [...cluster.edges].reverse(),
        token,
        topics: FEED_TOPICS,
        // Until the load's last tasks have run.
        durationMs: durationMs + 10_000,
        reconnectEveryMs: scenario.load.reconnect_every_s * 1000,
      }, followerReports));
    }
    const t0 = Date.now();
    loadStart = t0;
    const runs: FaultRun[] = [];
    const faults = scenario.faults.map((f) =>
      new Promise<void>((resolve) => {
        setTimeout(async () => {
          const r: FaultRun = {
            description: describeFault(f),
            kind: f.kind,
            start: Date.now(),
            end: 0,
            error: null,
          };
          runs.push(r);
          say(`t=${Math.round((r.start - t0) / 1000)}s fault: ${r.description}`);
          try {
            await applyFault(cluster, f, redis, token);
          } catch (err) {
            r.error = (err as Error).message;
            say(`fault ${r.description} failed: ${r.error}`);
          }
          r.end = Date.now();
          resolve();
        }, f.at_s * 1000);
      })
    );
    const progress = setInterval(() => {
      const by: Record<string, number> = {};
      for (const a of attempts) by[outcomeOf(a)] = (by[outcomeOf(a)] ?? 0) + 1;
      const notClosed = Object.keys(config.breakerPolicies)
        .filter((n) => breakers.get(n).state !== "closed");
      say(
        `t=${Math.round((Date.now() - t0) / 1000)}s faults ${runs.length}/${faults.length} ` +
          `requests ${JSON.stringify(by)}` +
          (notClosed.length > 0 ? ` not closed: ${notClosed.join(", ")}` : ""),
      );
    }, 5_000);
    try {
      await Promise.all(faults);
      await Promise.all(clients);
    } finally {
      clearInterval(progress);
    }

    say("load over; verifying");
    const queue = createQueue(redis, TASK_CATALOG, config.queue);
    const core = await verify(done, sql, queue, DRAIN, (outstanding, waitedMs) =>
      say(
        `drain ${Math.round(waitedMs / 1000)}s: ${outstanding} acknowledged writes and tasks ` +
          `outstanding; database breaker ${breakers.get("database").state}`,
      ));
    const effects = await verifyEffects(done, { sql, queue, outbox: cluster.outbox }, DRAIN);
    const published = await truth.stop();
    const feed = followerReports.flatMap((r) =>
      FEED_TOPICS.map((t) => ({
        follower: r.id,
        topic: t,
        ...checkTopic(r.topics[t]!, published[t]!),
      }))
    );
    const feedLost = feed.flatMap((f) => f.lost.map((o) => `feed ${f.follower} ${f.topic} ${o}`));
    const feedDuplicated = feed.flatMap((f) =>
      f.duplicated.map((o) => `feed ${f.follower} ${f.topic} ${o} (repeated)`)
    );
    const feedDisorder = feed.filter((f) => f.out_of_order > 0);
    const verdict = {
      ...core,
      acknowledged: core.acknowledged + effects.acknowledged.emails +
        effects.acknowledged.bookings + effects.acknowledged.events,
      lost: [...core.lost, ...effects.lost, ...feedLost],
      duplicated: [
        ...core.duplicated,
        ...effects.duplicated,
        ...feedDuplicated,
        ...feedDisorder.map((f) => `feed ${f.follower} ${f.topic}: ${f.out_of_order} out of order`),
      ],
      not_terminal: [...core.not_terminal, ...effects.not_terminal],
      dead_tasks: core.dead_tasks + effects.dead_tasks,
    };
    const feedSummary = {
      followers: followerReports.length,
      reconnects: followerReports.reduce((n, r) => n + r.reconnects, 0),
      involuntary_reconnects: followerReports.reduce((n, r) => n + r.involuntary, 0),
      published: Object.fromEntries(FEED_TOPICS.map((t) => [t, published[t]!.length])),
      received: feed.reduce((n, f) => n + f.received, 0),
      lost: feedLost.length,
      duplicated: feedDuplicated.length,
      out_of_order: feedDisorder.reduce((n, f) => n + f.out_of_order, 0),
      gaps_announced: feed.reduce((n, f) => n + f.gaps_announced, 0),
      excused: feed.reduce((n, f) => n + f.excused, 0),
    };
    const closedBy = Date.now() + 90_000;
    let open = (await breakers.list()).filter((b) => b.state !== "closed");
    while (open.length > 0 && Date.now() < closedBy) {
      await new Promise((r) => setTimeout(r, 500));
      open = (await breakers.list()).filter((b) => b.state !== "closed");
    }
    const undocumented = attempts.filter((a) => outcomeOf(a) === "5xx_undocumented");
    const perFault = runs.sort((a, b) => a.start - b.start).map((r) => {
      const opened = transitions.find((t) => t.at >= r.start && t.to === "open");
      const closed = opened && transitions.find((t) => t.at > opened.at && t.to === "closed");
      return {
        fault: r.description,
        at_s: Math.round((r.start - t0) / 100) / 10,
        error: r.error,
        ...faultStats(attempts, r.start, r.end, 5_000),
        // Only a transition inside the fault's own window (until 5 s after it ended).
        breaker_opened_after_ms: opened && opened.at <= r.end + 5_000 ? opened.at - r.start : null,
        breaker_closed_after_end_ms: closed && opened && opened.at <= r.end + 5_000
          ? Math.max(0, closed.at - r.end)
          : null,
      };
    });

    const lastFaultEnd = Math.max(t0, ...runs.map((r) => r.end));
    const breakerRuns = summariseBreakers(transitions, t0, lastFaultEnd, Date.now());

    clearInterval(trackPids);
    for (const p of Object.values(cluster.processes)) if (p.pid !== null) pids.add(p.pid);
    await breakers.stop();
    await sql.end().catch(() => {});
    await cluster.stop();
    const leaked = [...pids].filter(processAlive);
    // A late write is not lost, but a run that has not converged by the end
    // of its drain has not shown recovery: it fails too, named apart.
    const failures: Record<string, number> = {
      lost: verdict.lost.length,
      late: verdict.late.length,
      duplicated: verdict.duplicated.length,
      not_terminal: verdict.not_terminal.length,
      undocumented_5xx: undocumented.length,
      breakers_open: open.length,
      leaked_processes: leaked.length,
      rejected_events: effects.rejected_events,
      missing_followers: Math.max(0, scenario.load.followers - followerReports.length),
      fault_errors: runs.filter((r) => r.error !== null).length,
    };
    const failedBecause = Object.keys(failures).filter((k) => failures[k]! > 0);
    const failed = failedBecause.length > 0;
    const report = {
      bench: "chaos",
      scenario: scenario.name,
      date: new Date(began).toISOString(),
      machine: `${Deno.build.os}-${Deno.build.arch}, ${navigator.hardwareConcurrency} cpus`,
      runtime_s: Math.round((Date.now() - began) / 1000),
      requests: attempts.length,
      ...verdict,
      lost: verdict.lost.length,
      late: verdict.late.length,
      duplicated: verdict.duplicated.length,
      not_terminal: verdict.not_terminal.length,
      acknowledged_by_kind: {
        leads_and_tasks: core.acknowledged,
        ...effects.acknowledged,
      },
      rejected_events: effects.rejected_events,
      feed: feedSummary,
      undocumented_5xx: undocumented.length,
      breakers_open_at_end: open.map((b) => b.name),
      breakers: breakerRuns,
      breaker_transitions: timeline(transitions, t0),
      leaked_processes: leaked.length,
      process_errors: cluster.errors.length,
      passed: !failed,
      failed_because: failedBecause,
      faults: perFault,
    };
    console.log(JSON.stringify(report));
    say(
      `--- ${scenario.name}: ${failed ? `FAILED (${failedBecause.join(", ")})` : "passed"} in ` +
        `${report.runtime_s} s ---`,
    );
    say(
      `operations ${verdict.operations}, acknowledged ${verdict.acknowledged}, unanswered ` +
        `${verdict.unanswered}, lost ${verdict.lost.length}, late (still retrying at the drain's ` +
        `end) ${verdict.late.length}, duplicated ${verdict.duplicated.length}, ` +
        `tasks not terminal ${verdict.not_terminal.length}, dead ${verdict.dead_tasks}, ` +
        `undocumented 5xx ${undocumented.length}, breakers open ${open.length}, leaked ${leaked.length}`,
    );
    say(
      `acknowledged by kind ${JSON.stringify(report.acknowledged_by_kind)}; feed ` +
        `${JSON.stringify(feedSummary)}`,
    );
    for (const f of perFault) {
      say(
        `  ${f.fault.padEnd(42)} ${JSON.stringify(f.requests)} detect ${f.detect_ms ?? "-"} ms, ` +
          `recover ${f.recover_ms ?? "-"} ms, breaker open +${
            f.breaker_opened_after_ms ?? "-"
          } ms ` +
          `closed +${f.breaker_closed_after_end_ms ?? "-"} ms${f.error ? ` ERROR ${f.error}` : ""}`,
      );
    }
    for (const b of breakerRuns) {
      say(
        `  breaker ${b.name}: opened ${b.opens}x, out of closed ${b.not_closed_ms} ms, closed ` +
          `for good ${b.closed_after_last_fault_ms ?? "-"} ms after the last fault` +
          (b.open_at_end ? " (still open)" : ""),
      );
    }
    if (verdict.drain_extended_ms > 0) {
      say(
        `  drain extended ${verdict.drain_extended_ms} ms past its base while writes kept landing`,
      );
    }
    for (const l of verdict.lost) say(`  LOST ${l}`);
    for (const l of verdict.late.slice(0, 10)) say(`  LATE ${l}`);
    if (verdict.late.length > 10) say(`  LATE ... and ${verdict.late.length - 10} more`);
    for (const d of verdict.duplicated) say(`  DUPLICATE ${d}`);
    for (const n of verdict.not_terminal) say(`  NOT TERMINAL ${n}`);
    for (const u of undocumented.slice(0, 10)) say(`  5xx ${JSON.stringify(u)}`);
    const errorKinds = new Map<string, string>();
    for (const e of cluster.errors) {
      // One line per kind: the log message and the error's own message.
      const msg = `${/"msg":"([^"]*)"/.exec(e)?.[1] ?? e.slice(0, 120)} ${
        /"message":"([^"]{0,80})/.exec(e)?.[1] ?? ""
      }`;
      if (!errorKinds.has(msg)) errorKinds.set(msg, e);
    }
    for (const [, e] of [...errorKinds].slice(0, 15)) say(`  process error: ${e}`);
    code = failed ? 1 : 0;
  } finally {
    clearInterval(trackPids);
    await breakers.stop().catch(() => {});
    await sql.end().catch(() => {});
    await cluster.stop().catch(() => {});
  }
  return code;
}

if (import.meta.main) {
  let args: ChaosArgs;
  let scenario: Scenario;
  try {
    args = parseChaosArgs(Deno.args);
    scenario = args.scenario === "quick"
      ? QUICK
      : args.scenario === "full"
      ? FULL
      : await loadScenario(args.scenario.file);
  } catch (err) {
    console.error((err as Error).message);
    Deno.exit(2);
  }
  Deno.exit(await run(scenario));
}
