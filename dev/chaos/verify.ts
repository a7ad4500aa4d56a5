/**
 * The verification phase of a chaos run and the per-fault statistics.
 *
 * - Leads: every operation answered 201/202 is exactly one row (its name is
 *   unique); none appears twice (acknowledged or not). One missing at the
 *   end of the drain is "late" (queued, its task still alive) or "lost"
 *   (drain.ts).
 * - Tasks: every 202 names one task id across all retries of its key, and
 *   that task ends terminal (succeeded, or dead with a reason).
 * - 5xx: a 503 with Retry-After is the documented degraded answer; any other
 *   5xx is a finding.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import { Drain, type DrainBounds, unappliedWrite } from "./drain.ts";
import type { AttemptLine, DoneLine } from "./load.ts";

/** What the verification found. */
export interface Verdict {
  operations: number;
  acknowledged: number;
  /** Operations with no definitive answer before the settle deadline (allowed: 0 or 1 effect). */
  unanswered: number;
  lost: string[];
  /** Acknowledged lead writes queued and still retrying when the drain ended: not applied yet. */
  late: string[];
  duplicated: string[];
  not_terminal: string[];
  dead_tasks: number;
  /** How long the drain waited past its base time because work kept landing, ms. */
  drain_extended_ms: number;
}

const ACKED = new Set([200, 201, 202]);

/** Waits until every acknowledged effect is visible (queued writes applied) or the drain ends, then checks. */
export async function verify(
  done: DoneLine[],
  sql: Pool,
  queue: TaskQueue,
  bounds: DrainBounds,
  onProgress: (outstanding: number, waitedMs: number) => void = () => {},
): Promise<Verdict> {
  const leads = done.filter((d) => d.kind === "leads");
  const tasks = done.filter((d) => d.kind === "tasks");
  const ackedLeads = leads.filter((d) => ACKED.has(d.status));
  const ackedTasks = tasks.filter((d) => ACKED.has(d.status));
  const drain = new Drain(bounds, Date.now());
  const began = Date.now();
  const deadline = began + bounds.baseMs + bounds.extendMs;
  let reported = began;

  let counts = new Map<string, number>();
  let infos: Awaited<ReturnType<TaskQueue["getTask"]>>[] = [];
  for (;;) {
    try {
      const { rows } = await sql.query<{ name: string; n: string }>(
        "SELECT name, count(*) AS n FROM businesses WHERE source = 'chaos' GROUP BY name",
      );
      counts = new Map(rows.map((r) => [r.name, Number(r.n)]));
      infos = await Promise.all(ackedTasks.map((d) => queue.getTask(d.ids[0] ?? "")));
    } catch (err) {
      // A store still recovering: look again until the deadline, then judge what was read.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 500));
      continue;
    }
    const leadsOut = ackedLeads.filter((d) => (counts.get(d.name) ?? 0) === 0).length;
    const tasksOut = infos.filter((t) => t?.status !== "succeeded" && t?.status !== "dead").length;
    if (!drain.observe(leadsOut + tasksOut, Date.now())) break;
    if (Date.now() - reported >= 10_000) {
      reported = Date.now();
      onProgress(leadsOut + tasksOut, reported - began);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  const unapplied = await Promise.all(
    ackedLeads.filter((d) => (counts.get(d.name) ?? 0) === 0).map(async (d) =>
      unappliedWrite(d, await Promise.all(d.ids.map((id) => queue.getTask(id).catch(() => null))))
    ),
  );
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([name]) => name);
  for (const d of tasks) if (d.ids.length > 1) duplicated.push(`${d.op} (task ids ${d.ids})`);
  const notTerminal: string[] = [];
  ackedTasks.forEach((d, i) => {
    const status = infos[i]?.status;
    if (status !== "succeeded" && status !== "dead") {
      notTerminal.push(`${d.op} (${status ?? "missing"})`);
    }
  });
  return {
    operations: done.length,
    acknowledged: ackedLeads.length + ackedTasks.length,
    unanswered: done.filter((d) => d.status === 0).length,
    lost: unapplied.filter((u) => u.verdict === "lost").map((u) => u.description),
    late: unapplied.filter((u) => u.verdict === "late").map((u) => u.description),
    duplicated,
    not_terminal: notTerminal,
    dead_tasks: infos.filter((t) => t?.status === "dead").length,
    drain_extended_ms: drain.extendedMs(Date.now()),
  };
}

/** Outcome class of one attempt. */
export function outcomeOf(a: AttemptLine): string {
  if (a.status === 0) return "network_error";
  if (a.status === 202) return "queued";
  if (a.status >= 200 && a.status < 300) return "ok";
  if (a.status === 503 && a.retry_after) return "503_retry_after";
  if (a.status === 409 || a.status === 429) return `${a.status}_retry`;
  if (a.status >= 500) return "5xx_undocumented";
  return `${a.status}`;
}

/** Statistics of one fault's window [start, end + tailMs]. */
export interface FaultStats {
  requests: Record<string, number>;
  /** First failed attempt after the start, ms after it (null: none failed). */
  detect_ms: number | null;
  /** First success after the last failure in the window, ms after the fault ended (null: none failed). */
  recover_ms: number | null;
}

/** Aggregates the attempts of one fault window. */
export function faultStats(
  attempts: AttemptLine[],
  start: number,
  end: number,
  tailMs: number,
): FaultStats {
  const inWindow = attempts.filter((a) => a.at >= start && a.at <= end + tailMs);
  const requests: Record<string, number> = {};
  for (const a of inWindow) requests[outcomeOf(a)] = (requests[outcomeOf(a)] ?? 0) + 1;
  const failed = (a: AttemptLine) => !["ok", "queued"].includes(outcomeOf(a));
  const firstFail = inWindow.find(failed);
  const lastFail = inWindow.findLast(failed);
  const okAfter = lastFail ? attempts.find((a) => a.at > lastFail.at && !failed(a)) : undefined;
  return {
    requests,
    detect_ms: firstFail ? firstFail.at - start : null,
    recover_ms: lastFail ? (okAfter ? Math.max(0, okAfter.at - end) : null) : null,
  };
}
