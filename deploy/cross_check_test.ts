/**
 * deploy.yaml against the code: configuration variables (shared/config/),
 * ports and probe routes, the mesh policy against the gateway's policy table
 * (edge/auth/policy.ts), and the metrics rules and autoscaling name.
 */
import assert from "node:assert/strict";
import { parseConfig, VARIABLES, type VariableSpec } from "../shared/config/mod.ts";
import { ACCESS_POLICY } from "../edge/auth/policy.ts";
import { healthRoutes } from "../edge/routes/health.ts";
import { adminHandler } from "../shared/metrics/admin_server.ts";
import type { Deps } from "../shared/deps.ts";
import { type Doc, find, loadDeployYaml, podTemplates } from "./load.ts";
import { halfRules, istioAllows, type MeshRequest } from "./istio_eval.ts";
import { readRuleGroups } from "./render.ts";

const docs = await loadDeployYaml();
const specs = new Map((VARIABLES as readonly VariableSpec[]).map((s) => [s.name, s]));

/** What each AWS secret property must hold for parseConfig to accept it (docs/deploying.md). */
const SAMPLE_SECRETS: Record<string, string> = {
  DATABASE_URL: "postgresql://app:pw@db.example.neon.tech/pleasant_cove?sslmode=require",
  JWT_HS256_KEYS: "k2026:0123456789abcdef0123456789abcdef-sample",
  UNSUBSCRIBE_SECRET: "0123456789abcdef0123456789abcdef",
  UPSTASH_REDIS_REST_TOKEN: "sample-token",
  REDIS_TCP_URL: "rediss://default:sample-token@pleasant-cove.upstash.io:6379",
  EMAIL_API_KEY: "sample-email-key",
  PLACES_API_KEY: "sample-places-key",
};

function containerEnv(c: Doc): Record<string, string> {
  return Object.fromEntries(c.env.map((e: Doc) => [e.name, e.value]));
}

/** Reads NAME_FILE paths as the mounted Secret files would read. */
function readMounted(path: string): string {
  const key = path.slice(path.lastIndexOf("/") + 1);
  const value = SAMPLE_SECRETS[key];
  if (value === undefined) throw new Deno.errors.NotFound(path);
  return `${value}\n`;
}

Deno.test("every variable the manifests set is declared in shared/config/; secrets only as NAME_FILE", () => {
  for (const { owner, pod } of podTemplates(docs)) {
    for (const name of Object.keys(containerEnv(pod.containers[0]))) {
      const base = name.endsWith("_FILE") ? name.slice(0, -5) : name;
      const spec = specs.get(base);
      assert(spec, `${owner}: ${name} is not a variable of shared/config/`);
      if (name.endsWith("_FILE")) assert(spec.secret, `${owner}: ${base} is not a secret`);
      else assert(!spec.secret, `${owner}: secret ${name} set as a plain value`);
    }
  }
});

Deno.test("every process's configuration parses (every required variable is set)", () => {
  for (const { owner, pod } of podTemplates(docs)) {
    const env = containerEnv(pod.containers[0]);
    const config = parseConfig(env, { readTextFile: readMounted });
    assert.equal(config.env, "production", owner);
    assert.notEqual(config.auth.hs256Keys[0]?.kid, "local", owner);
    // The check can fail: without one required variable the same env is refused.
    const { UPSTASH_REDIS_REST_URL: _, ...missing } = env;
    assert.throws(
      () => parseConfig(missing, { readTextFile: readMounted }),
      /UPSTASH_REDIS_REST_URL/,
    );
  }
});

Deno.test("the edge listens where its Service, container ports and probes point", async () => {
  const edge = find(docs, "Deployment", "edge").spec.template.spec.containers[0];
  const env = containerEnv(edge);
  const config = parseConfig(env, { readTextFile: readMounted });
  assert.equal(config.edge.host, "0.0.0.0", "a pod must listen beyond loopback");
  const http = edge.ports.find((p: Doc) => p.name === "http");
  assert.equal(http.containerPort, config.edge.port);
  const routes = healthRoutes({} as Deps);
  for (const probe of [edge.startupProbe, edge.livenessProbe, edge.readinessProbe]) {
    assert.equal(probe.httpGet.port, "http");
    assert(
      routes.routes.some((r) => r.method === "GET" && r.path === probe.httpGet.path),
      `no GET ${probe.httpGet.path} route on the edge`,
    );
  }
  // Liveness must not depend on Redis/Postgres: /health answers with no deps at all.
  const res = await routes.request(edge.livenessProbe.httpGet.path);
  assert.equal(res.status, 200);
  const service = find(docs, "Service", "edge");
  assert(service.spec.ports.some((p: Doc) => p.targetPort === "http"));
});

Deno.test("admin listeners bind beyond loopback, on the declared ports, and answer the probes", async () => {
  const admins = [
    { name: "edge", port: "http-metrics", prefix: "EDGE" },
    { name: "workers", port: "http-admin", prefix: "WORKER" },
  ];
  for (const { name, port, prefix } of admins) {
    const c = find(docs, "Deployment", name).spec.template.spec.containers[0];
    const config = parseConfig(containerEnv(c), { readTextFile: readMounted });
    const admin = name === "edge"
      ? config.observability.edgeAdmin
      : config.observability.workerAdmin;
    // Prometheus scrapes the pod IP; a loopback listener would be unreachable.
    assert.equal(admin.host, "0.0.0.0", `${prefix}_ADMIN_HOST of ${name}`);
    assert.equal(c.ports.find((p: Doc) => p.name === port).containerPort, admin.port);
    assert.ok(config.observability.metricsEnabled, `${name}: metrics on`);
  }
  // The worker's probes use the admin server's routes (shared/metrics/admin_server.ts).
  const worker = find(docs, "Deployment", "workers").spec.template.spec.containers[0];
  const handler = adminHandler({ metrics: null, ready: () => Promise.resolve({ ready: true }) });
  for (const probe of [worker.startupProbe, worker.livenessProbe, worker.readinessProbe]) {
    assert.equal(probe.httpGet.port, "http-admin");
    const res = await handler(new Request(`http://admin${probe.httpGet.path}`));
    await res.body?.cancel();
    assert.equal(res.status, 200, `worker probe ${probe.httpGet.path}`);
  }
  const missing = await handler(new Request("http://admin/nope"));
  await missing.body?.cancel();
  assert.equal(missing.status, 404, "the check can fail");
});

const EDGE = { "app.kubernetes.io/name": "pleasant-cove", "app.kubernetes.io/component": "edge" };
const sa = (name: string) => `cluster.local/ns/pleasant-cove/sa/${name}`;
const request = (principal: string, method: string, path: string, port = 8787): MeshRequest => ({
  principal,
  method,
  path,
  port,
  workload: EDGE,
});

Deno.test("the mesh admits exactly the service grants of edge/auth/policy.ts", () => {
  const fromTable = new Set<string>();
  for (const group of ACCESS_POLICY) {
    for (const grant of group.grants) {
      for (const service of grant.allow.services ?? []) {
        for (const method of grant.methods) {
          for (const path of group.paths) {
            fromTable.add(`${sa(service.slice(3))} ${method} ${path}`);
          }
        }
      }
    }
  }
  const fromMesh = new Set<string>();
  for (const p of docs.filter((d) => d.kind === "AuthorizationPolicy")) {
    for (const rule of p.spec.rules ?? []) {
      for (const principal of rule.from.flatMap((f: Doc) => f.source.principals ?? [])) {
        if (!principal.startsWith(sa(""))) continue; // ingress gateway, Prometheus
        for (const op of rule.to.map((t: Doc) => t.operation)) {
          for (const method of op.methods) {
            for (const path of op.paths) fromMesh.add(`${principal} ${method} ${path}`);
          }
        }
      }
    }
  }
  assert(fromTable.size > 0);
  assert.deepEqual([...fromMesh].sort(), [...fromTable].sort());
});

Deno.test("the control API admits api-gateway and minerva for GET/POST only, and nobody else", () => {
  assert.equal(istioAllows(docs, request(sa("minerva"), "GET", "/v1/tasks/t1")), true);
  assert.equal(istioAllows(docs, request(sa("minerva"), "POST", "/v1/tasks")), true);
  // Listing tasks is for admins and operators (the tasks group): no service grant.
  assert.equal(istioAllows(docs, request(sa("minerva"), "GET", "/v1/tasks")), false);
  assert.equal(istioAllows(docs, request(sa("api-gateway"), "POST", "/v1/leads/l1")), true);
  assert.equal(istioAllows(docs, request(sa("minerva"), "DELETE", "/v1/tasks/t1")), false);
  assert.equal(istioAllows(docs, request(sa("minerva"), "PATCH", "/v1/leads/l1")), false);
  assert.equal(istioAllows(docs, request(sa("workers"), "GET", "/v1/tasks")), false);
  assert.equal(
    istioAllows(docs, request("cluster.local/ns/other/sa/x", "POST", "/v1/tasks")),
    false,
  );
  assert.equal(istioAllows(docs, request(sa("api-gateway"), "GET", "/v1/analytics/leads")), false);
  // Public traffic comes through the ingress gateway; the JWT policy decides from there.
  const ingress = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
  assert.equal(istioAllows(docs, request(ingress, "DELETE", "/v1/admin/x")), true);
  assert.equal(istioAllows(docs, request(ingress, "GET", "/metrics", 9464)), false);
  const prometheus = "cluster.local/ns/monitoring/sa/prometheus-k8s";
  assert.equal(istioAllows(docs, request(prometheus, "GET", "/metrics", 9464)), true);
  assert.equal(istioAllows(docs, request(prometheus, "GET", "/v1/tasks")), false);
  const worker = {
    ...request(prometheus, "GET", "/metrics", 9465),
    workload: { ...EDGE, "app.kubernetes.io/component": "workers" },
  };
  assert.equal(istioAllows(docs, worker), true);
  assert.equal(istioAllows(docs, { ...worker, principal: sa("edge") }), false);
});

Deno.test("the seed's OR-ed shape (from and to as separate rules) is not in deploy.yaml", () => {
  assert.deepEqual(halfRules(docs), []);
  // The detector and the evaluator both see the seed's bug.
  const seed = structuredClone(find(docs, "AuthorizationPolicy", "edge-control-api"));
  const [rule] = seed.spec.rules;
  seed.spec.rules = [{ from: rule.from }, { to: rule.to }];
  assert.deepEqual(halfRules([seed]), ["edge-control-api rule 1", "edge-control-api rule 2"]);
  const stranger = request("cluster.local/ns/other/sa/x", "POST", "/v1/leads");
  assert.equal(istioAllows([seed], stranger), true);
  assert.equal(
    istioAllows([find(docs, "AuthorizationPolicy", "edge-control-api")], stranger),
    false,
  );
});

/** Metric names a PromQL expression reads (functions, keywords, labels and durations removed). */
export function metricNames(expr: string): string[] {
  const KEYWORDS = new Set([
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
  ]);
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names = new Set<string>();
  for (const m of bare.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

Deno.test("metricNames reads the series of an expression", () => {
  assert.deepEqual(
    metricNames(
      'sum by (route) (rate(api_request_duration_seconds_bucket{status=~"5.."}[5m])) / ignoring(x) sum(up) > 0.5',
    ),
    ["api_request_duration_seconds_bucket", "up"],
  );
});

/** Metric names that appear as string literals in the processes' source. */
async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const dir of ["edge", "workers", "shared"]) {
    for await (const file of walk(new URL(`../${dir}/`, import.meta.url))) {
      const text = await Deno.readTextFile(file);
      for (const m of text.matchAll(/["'`]([a-z_:][a-z0-9_:]*)["'`]/g)) names.add(m[1]!);
    }
  }
  return names;
}

async function* walk(dir: URL): AsyncGenerator<URL> {
  for await (const entry of Deno.readDir(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) yield* walk(url);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) yield url;
  }
}

const exported = await exportedMetricNames();
Deno.test({
  name: "every metric the rules and the KEDA trigger read is one the platform exports",
  async fn() {
    const triggers = find(docs, "ScaledObject", "workers").spec.triggers;
    const groups = (await readRuleGroups()) ?? [];
    const exprs = [
      ...triggers.map((t: { metadata: { query: string } }) => t.metadata.query),
      ...groups.flatMap((g) => (g.rules ?? []).map((r) => String(r.expr))),
    ];
    // Series the rules record themselves (`level:metric:operation`).
    const recorded = new Set(groups.flatMap((g) => (g.rules ?? []).map((r) => String(r.record))));
    for (const expr of exprs) {
      for (const name of metricNames(expr)) {
        if (recorded.has(name)) continue;
        if (name === "up" || name.startsWith("ALERTS")) continue; // Prometheus' own series
        const base = name.replace(/_(bucket|sum|count)$/, "");
        assert(exported.has(name) || exported.has(base), `${name} (in ${expr}) is not exported`);
      }
    }
  },
});

Deno.test("the PrometheusRule carries deploy/prometheus/rules.yml exactly", async () => {
  const groups = await readRuleGroups();
  const rules = docs.filter((d) => d.kind === "PrometheusRule");
  if (groups === null) {
    assert.deepEqual(rules, [], "a PrometheusRule without deploy/prometheus/rules.yml");
    return;
  }
  assert.equal(rules.length, 1);
  assert.deepEqual(rules[0]!.spec.groups, groups, "run `deno task deploy:render`");
});
