/**
 * The proof that metric names, labels and rules agree: a real Prometheus
 * (Debian's `prometheus` package) scrapes a real edge and a real worker
 * process every second, evaluates deploy/prometheus/rules.yml, and the test
 * reads the seed's metrics and a recording rule back through Prometheus's
 * HTTP API after real traffic; then the edge's own `GET /v1/slo` reads the
 * same recording rules from that Prometheus (PROMETHEUS_URL).
 */
import assert from "node:assert/strict";
import { mintDevToken } from "../dev/token.ts";
import { freePort } from "../dev/ports.ts";
import { useTestStack } from "../testing/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { AppProcess, startEdge } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { waitUntil } from "../testing/wait.ts";

const RULES = new URL("../deploy/prometheus/rules.yml", import.meta.url).pathname;

/** A throwaway Prometheus on a free loopback port; config and data in `dir`. */
async function startPrometheus(
  dir: string,
  targets: { edge: string; worker: string },
  port: number = freePort(),
) {
  const config = [
    "global: { scrape_interval: 1s, evaluation_interval: 1s }",
    `rule_files: [${JSON.stringify(RULES)}]`,
    "scrape_configs:",
    `  - { job_name: edge, static_configs: [{ targets: [${JSON.stringify(targets.edge)}] }] }`,
    `  - { job_name: worker, static_configs: [{ targets: [${JSON.stringify(targets.worker)}] }] }`,
  ].join("\n");
  await Deno.writeTextFile(`${dir}/prometheus.yml`, config);
  const child = new Deno.Command("prometheus", {
    args: [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // already exited
    }
    await child.status;
    return await stderr;
  };
  return { url, stop };
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(url: string, promql: string): Promise<Sample[]> {
  // Prometheus may not listen yet right after its start (connection refused on
  // a quiet machine, where the first query comes at once): no samples yet.
  const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`)
    .catch((err) => {
      if (err instanceof TypeError) return null;
      throw err;
    });
  if (res === null) return [];
  if (!res.ok) {
    await res.body?.cancel();
    return [];
  }
  const body = await res.json();
  return body.status === "success" ? body.data.result : [];
}

Deno.test({
  name: "Prometheus scrapes a real edge and worker and evaluates the rules on their metrics",
  // Deps hold a Neon Pool (async teardown) in the stack helper.
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    // Prometheus's port is chosen first: the edge is told where to ask for the SLO status.
    const prometheusPort = freePort();
    const env = {
      ...stack.env(),
      APP_ENV: "test",
      LOG_LEVEL: "info",
      PROMETHEUS_URL: `http://127.0.0.1:${prometheusPort}`,
    };
    const dir = await Deno.makeTempDir({ prefix: "pcprom-" });
    const worker = new AppProcess("workers/main.ts", env);
    let edge: AppProcess | null = null;
    let prometheus: { url: string; stop(): Promise<string> } | null = null;
    try {
      const started = await startEdge(env);
      edge = started.edge;
      const edgeAdmin = (await edge.waitForLog("edge admin listening")).url as string;
      const workerAdmin = (await worker.waitForLog("worker admin listening", 30_000))
        .url as string;
      await worker.waitForLog("worker ready", 30_000);
      prometheus = await startPrometheus(dir, {
        edge: new URL(edgeAdmin).host,
        worker: new URL(workerAdmin).host,
      }, prometheusPort);
      const token = `Bearer ${await mintDevToken(parseConfig(env).auth, { sub: "sa:minerva" })}`;
      const traffic = async () => {
        const calls = [
          fetch(`${started.url}/v1/me`, { headers: { authorization: token } }),
          fetch(`${started.url}/v1/leads/${crypto.randomUUID()}`, {
            headers: { authorization: token },
          }),
          fetch(`${started.url}/v1/tasks`, {
            method: "POST",
            headers: {
              authorization: token,
              "content-type": "application/json",
              "idempotency-key": crypto.randomUUID(),
            },
            body: JSON.stringify({ type: "noop", payload: { echo: "e2e" } }),
          }),
        ];
        for (const res of await Promise.all(calls)) await res.body?.cancel();
      };

      // Each check: a PromQL expression that must return at least one finite sample.
      const checks: Record<string, string> = {
        requests: 'api_requests_total{route="/v1/me",method="GET",status="200",job="edge"}',
        latency: 'api_request_duration_seconds_bucket{route="/v1/leads/:id",le="0.2"}',
        bookings: 'appointment_bookings_total{status="success",job="worker"}',
        queue: 'task_queue_size{state="ready",priority="high",job="worker"}',
        queue_edge: 'task_queue_size{state="delayed",job="edge"}',
        workers_alive: 'worker_tasks_in_flight{service="worker"}',
        tasks: 'task_outcomes_total{type="noop",outcome="succeeded"}',
        p95_record: "api:request_duration_seconds:p95_5m",
        error_ratio_record: "api:request_errors:ratio_rate5m",
      };
      const pending = new Set(Object.keys(checks));
      const found: Record<string, Sample[]> = {};
      const promUrl = prometheus.url;
      await waitUntil(async () => {
        await traffic();
        for (const name of [...pending]) {
          const samples = await query(promUrl, checks[name]!);
          if (samples.some((s) => Number.isFinite(Number(s.value[1])))) {
            found[name] = samples;
            pending.delete(name);
          }
        }
        return pending.size === 0;
      }, {
        timeoutMs: 90_000,
        everyMs: 250,
        what: "values in Prometheus",
        detail: () => `none yet for ${[...pending].join(", ")}`,
      });
      const p95 = Number(found.p95_record![0]!.value[1]);
      assert.ok(p95 > 0 && p95 <= 10, `p95 ${p95} s`);
      assert.equal(Number(found.error_ratio_record![0]!.value[1]), 0, "no 5xx were sent");
      // The seed's alerts are loaded and quiet on a healthy system.
      const rules = await (await fetch(`${prometheus.url}/api/v1/rules`)).json();
      const alerts = rules.data.groups.flatMap((g: { rules: { name: string; state?: string }[] }) =>
        g.rules.filter((r) => r.state !== undefined)
      );
      for (const name of ["HighErrorRate", "LowBookingSuccessRate", "TaskQueueBacklog"]) {
        const alert = alerts.find((r: { name: string }) => r.name === name);
        assert.equal(alert?.state, "inactive", `${name}: ${JSON.stringify(alert)}`);
      }

      // GET /v1/slo: the same recording rules through the edge, judged by their alerts' bounds.
      const viewer = await mintDevToken(parseConfig(env).auth, { sub: "vic", roles: ["viewer"] });
      const slo = await fetch(`${started.url}/v1/slo`, {
        headers: { authorization: `Bearer ${viewer}` },
      });
      assert.equal(slo.status, 200);
      const report = await slo.json();
      assert.notEqual(report.status, "unknown", JSON.stringify(report));
      assert.equal(report.reason, null);
      const reading = (name: string) =>
        report.objectives.find((o: { name: string }) => o.name === name);
      assert.equal(reading("error_rate").value, 0, "no 5xx were sent");
      assert.equal(reading("error_rate").status, "ok");
      const latency = reading("p95_latency");
      assert.ok(latency.value > 0 && latency.value <= 10, JSON.stringify(latency));
      // A loaded CI machine may well be slower than 200 ms: the verdict follows the value.
      assert.equal(latency.status, latency.value <= 0.2 ? "ok" : "breach");
      assert.equal(report.status, latency.status === "breach" ? "breach" : "ok");
      // No booking ran: the 15-minute success ratio has no sample (its rule drops 0/0).
      assert.deepEqual(
        [reading("booking_success_rate").value, reading("booking_success_rate").status],
        [null, "no_data"],
      );
      // Service accounts are not in the status group.
      const minerva = await fetch(`${started.url}/v1/slo`, { headers: { authorization: token } });
      assert.equal(minerva.status, 403);
      await minerva.body?.cancel();
    } finally {
      await prometheus?.stop();
      await edge?.stop("SIGTERM");
      await worker.stop("SIGTERM");
      await Deno.remove(dir, { recursive: true });
    }
  },
});
