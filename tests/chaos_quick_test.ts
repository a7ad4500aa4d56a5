/**
 * `deno task chaos --quick` inside `deno task test`: one short fault of each
 * kind against a stack of its own (two edges, two workers, load clients of
 * leads, tasks, emails, bookings and events, a WebSocket follower),
 * then the verification (docs/reliability.md). The run's own exit code says
 * whether anything was lost, duplicated, left open or answered with an
 * undocumented 5xx; its JSON line says what.
 */
import assert from "node:assert/strict";

Deno.test("chaos --quick: no acknowledged write lost or duplicated under every fault kind", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "dev/chaos/main.ts", "--quick"],
    cwd: new URL("../", import.meta.url).pathname,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  let report: Record<string, unknown>;
  try {
    report = JSON.parse(line);
  } catch {
    throw new Error(`no JSON report (exit ${out.code}):\n${stderr.slice(-4000)}`);
  }
  const summary = stderr.split("\n").filter((l) => l.includes("---") || l.startsWith("[chaos]   "));
  assert.equal(report.bench, "chaos");
  assert.equal(report.scenario, "quick");
  assert.equal((report.faults as unknown[]).length, 11, "every fault of the scenario ran");
  assert.ok((report.acknowledged as number) > 0, "the load was acknowledged at all");
  const byKind = report.acknowledged_by_kind as Record<string, number>;
  for (const kind of ["leads_and_tasks", "emails", "bookings", "events"]) {
    assert.ok(byKind[kind]! > 0, `${kind} were acknowledged at all`);
  }
  const feed = report.feed as Record<string, number>;
  assert.equal(feed.followers, 1, "the follower reported");
  assert.ok(feed.received! > 0 && feed.reconnects! > 0, "it received messages across reconnects");
  assert.deepEqual([feed.lost, feed.duplicated, feed.out_of_order], [0, 0, 0]);
  assert.deepEqual(
    [report.lost, report.duplicated, report.not_terminal, report.undocumented_5xx],
    [0, 0, 0, 0],
    summary.join("\n"),
  );
  assert.deepEqual(report.breakers_open_at_end, []);
  assert.equal(report.leaked_processes, 0);
  assert.equal(out.code, 0, summary.join("\n"));
});
