/**
 * The verification phase of a chaos run and the per-fault statistics.
 *
 * - Leads: every operation answered 201/202 is exactly one row (its name is
 *   unique); none appears twice (acknowledged or not).
 * - Tasks: every 202 names one task id across all retries of its key, and
 *   that task ends terminal (succeeded, or dead with a reason).
 * - 5xx: a 503 with Retry-After is the documented degraded answer; any other
 *   5xx is a finding.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { AttemptLine, DoneLine } from "./load.ts";

/** What the verification found. */
export interface Verdict {
  operations: number;
  acknowledged: number;
  /** Operations with no definitive answer before the settle deadline (allowed: 0 or 1 effect). */
  unanswered: number;
  lost: string[];
  duplicated: string[];
  not_terminal: string[];
  dead_tasks: number;
}

const ACKED = new Set([200, 201, 202]);

/** Waits until every acknowledged effect is visible (queued writes applied), then checks. */
export async function verify(
  done: DoneLine[],
  sql: Pool,
  queue: TaskQueue,
  drainMs: number,
): Promise<Verdict> {
  const leads = done.filter((d) => d.kind === "leads");
  const tasks = done.filter((d) => d.kind === "tasks");
  const ackedLeads = leads.filter((d) => ACKED.has(d.status));
  const ackedTasks = tasks.filter((d) => ACKED.has(d.status));
  const deadline = Date.now() + drainMs;

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
    const leadsIn = ackedLeads.every((d) => (counts.get(d.name) ?? 0) > 0);
    const tasksDone = infos.every((t) => t?.status === "succeeded" || t?.status === "dead");
    if ((leadsIn && tasksDone) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  const lost = await Promise.all(
    ackedLeads.filter((d) => (counts.get(d.name) ?? 0) === 0).map((d) => lostLead(d, queue)),
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
    lost,
    duplicated,
    not_terminal: notTerminal,
    dead_tasks: infos.filter((t) => t?.status === "dead").length,
  };
}

/**
 * A lost lead write named with what became of it: its answer, and for a
 * queued write (202) the state of its `apply_lead_write` task, which tells a
 * write applied too late for the drain from one that was never applied.
 */
async function lostLead(d: DoneLine, queue: TaskQueue): Promise<string> {
  const tasks = await Promise.all(d.ids.map((id) => queue.getTask(id).catch(() => null)));
  const states = tasks.filter((t) => t !== null).map((t) =>
    `task ${t.status}, attempt ${t.attempts}/${t.maxAttempts}` +
    (t.lastError ? `, last error ${JSON.stringify(t.lastError.slice(0, 120))}` : "")
  );
  return `${d.op} (answered ${d.status}${states.length ? `; ${states.join("; ")}` : ""})`;
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
