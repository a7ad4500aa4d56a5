/**
 * The Prometheus rules checked by Prometheus's own tool: `promtool check
 * rules` (syntax, PromQL) and `promtool test rules` (the unit tests in
 * tests/), plus two checks promtool cannot make: every alert is tested both
 * firing and not firing, and every metric the rules read is one the code
 * exports (shared/metrics/metrics.ts). promtool comes from Debian's
 * `prometheus` package (.ci/run installs it when missing).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import { createMetrics } from "../../shared/metrics/metrics.ts";

const DIR = new URL("./", import.meta.url).pathname;
const RULES = `${DIR}rules.yml`;

async function testFiles(): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(`${DIR}tests`)) {
    if (e.isFile && e.name.endsWith(".yml")) out.push(`${DIR}tests/${e.name}`);
  }
  return out.sort();
}

async function promtool(...args: string[]): Promise<string> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command("promtool", { args, cwd: DIR }).output();
  } catch (err) {
    throw new Error("promtool is missing: install Debian's `prometheus` package", { cause: err });
  }
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `promtool ${args.join(" ")} failed:\n${text}`);
  return text;
}

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}

async function rules(): Promise<Rule[]> {
  const doc = parse(await Deno.readTextFile(RULES)) as { groups: { rules: Rule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}

Deno.test("promtool check rules accepts deploy/prometheus/rules.yml", async () => {
  assert.match(await promtool("check", "rules", RULES), /SUCCESS: \d+ rules found/);
});

Deno.test("promtool test rules passes every unit test under deploy/prometheus/tests/", async () => {
  const files = await testFiles();
  assert.ok(files.length > 0);
  const text = await promtool("test", "rules", ...files);
  assert.equal(text.match(/SUCCESS/g)?.length, files.length, text);
});

Deno.test("every alert is unit-tested both firing and not firing", async () => {
  const fired = new Set<string>();
  const quiet = new Set<string>();
  for (const file of await testFiles()) {
    const doc = parse(await Deno.readTextFile(file)) as {
      tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
    };
    for (const t of doc.tests.flatMap((g) => g.alert_rule_test ?? [])) {
      ((t.exp_alerts ?? []).length > 0 ? fired : quiet).add(t.alertname);
    }
  }
  const alerts = (await rules()).flatMap((r) => r.alert ? [r.alert] : []);
  for (const name of ["HighErrorRate", "LowBookingSuccessRate", "TaskQueueBacklog"]) {
    assert.ok(alerts.includes(name), `the seed's alert ${name} is missing`);
  }
  assert.deepEqual(alerts.filter((a) => !fired.has(a)), [], "alerts never tested firing");
  assert.deepEqual(alerts.filter((a) => !quiet.has(a)), [], "alerts never tested quiet");
});

Deno.test("every metric the rules read is exported by the code", async () => {
  const exported = new Set<string>();
  const metrics = await createMetrics().registry.getMetricsAsJSON();
  for (const m of metrics) {
    exported.add(m.name);
    if (String(m.type) === "histogram") {
      for (const s of ["_bucket", "_count", "_sum"]) exported.add(m.name + s);
    }
  }
  const all = await rules();
  const recorded = new Set(all.flatMap((r) => r.record ? [r.record] : []));
  const functions = new Set(["histogram_quantile"]);
  const read = new Set<string>();
  for (const r of all) {
    // Metric names carry an underscore; label names, keywords and functions here do not.
    for (const [name] of r.expr.replace(/"[^"]*"/g, "").matchAll(/[a-z][a-z0-9_:]*_[a-z0-9_:]*/g)) {
      if (!functions.has(name) && !recorded.has(name)) read.add(name);
    }
  }
  assert.ok(read.has("api_request_duration_seconds_bucket"));
  assert.deepEqual([...read].filter((n) => !exported.has(n)), [], "rules read unknown metrics");
});
