import assert from "node:assert/strict";
import { parse } from "yaml";
import {
  createSloSource,
  evaluate,
  OBJECTIVES,
  parseQueryAnswer,
  SLO_QUERY,
} from "./slo_status.ts";

const AT = new Date("2026-12-07T12:00:00Z");
const values = (entries: [string, number[]][]) => new Map(entries);

Deno.test("the objectives read recording rules of rules.yml with their alerts' bounds", async () => {
  const rules = parse(
    await Deno.readTextFile(new URL("../../deploy/prometheus/rules.yml", import.meta.url)),
  ) as { groups: { rules: { record?: string; alert?: string; expr: string }[] }[] };
  const all = rules.groups.flatMap((g) => g.rules);
  const records = new Set(all.map((r) => r.record).filter(Boolean));
  for (const o of OBJECTIVES) {
    assert.ok(records.has(o.record), `${o.record} is not recorded in rules.yml`);
    // The alert on that record fires exactly where the objective is missed.
    const sign = o.comparison === "below" ? ">" : "<";
    const alert = all.find((r) =>
      r.alert && r.expr.trim() === `${o.record} ${sign} ${o.threshold}`
    );
    assert.ok(alert, `no alert "${o.record} ${sign} ${o.threshold}" in rules.yml`);
  }
  assert.equal(
    SLO_QUERY,
    '{__name__=~"api:request_errors:ratio_rate5m|api:request_duration_seconds:p95_5m|' +
      'appointment_bookings:success_ratio_rate15m"}',
  );
});

Deno.test("evaluate() judges each objective; a missed one is a breach, no value is no_data", () => {
  const ok = evaluate(
    values([
      ["api:request_errors:ratio_rate5m", [0]],
      ["api:request_duration_seconds:p95_5m", [0.05, 0.12]],
    ]),
    AT,
  );
  assert.equal(ok.status, "ok");
  assert.equal(ok.reason, null);
  assert.deepEqual(ok.objectives.map((o) => [o.name, o.value, o.status]), [
    ["error_rate", 0, "ok"],
    // The worst series counts.
    ["p95_latency", 0.12, "ok"],
    ["booking_success_rate", null, "no_data"],
  ]);
  assert.equal(ok.checked_at, "2026-12-07T12:00:00.000Z");

  const breach = evaluate(
    values([
      ["api:request_errors:ratio_rate5m", [0.002]],
      ["api:request_duration_seconds:p95_5m", [0.2]],
      ["appointment_bookings:success_ratio_rate15m", [1, 0.98]],
    ]),
    AT,
  );
  assert.equal(breach.status, "breach");
  assert.deepEqual(breach.objectives.map((o) => o.status), ["ok", "ok", "breach"]);

  // NaN (0/0 without traffic) is no value; nothing measured is unknown with a reason.
  const none = evaluate(values([["api:request_errors:ratio_rate5m", [NaN]]]), AT);
  assert.equal(none.status, "unknown");
  assert.equal(none.reason, "no-data");
  assert.deepEqual(none.objectives.map((o) => o.status), ["no_data", "no_data", "no_data"]);
});

Deno.test("parseQueryAnswer() reads a vector and refuses anything else", () => {
  const parsed = parseQueryAnswer({
    status: "success",
    data: {
      resultType: "vector",
      result: [
        { metric: { __name__: "api:request_errors:ratio_rate5m" }, value: [1, "0.5"] },
        { metric: { __name__: "api:request_errors:ratio_rate5m" }, value: [1, "NaN"] },
        { metric: {}, value: [1, "1"] },
      ],
    },
  });
  assert.deepEqual([...parsed.entries()], [["api:request_errors:ratio_rate5m", [0.5, NaN]]]);
  for (
    const bad of [null, { status: "error" }, { status: "success", data: { resultType: "matrix" } }]
  ) {
    assert.throws(() => parseQueryAnswer(bad), { name: "SloUnknown", reason: "bad-response" });
  }
});

Deno.test("createSloSource(): not configured is unknown without any call", async () => {
  const source = createSloSource({ url: null, timeoutMs: 500, now: () => AT.getTime() });
  const report = await source.read();
  assert.equal(report.status, "unknown");
  assert.equal(report.reason, "not-configured");
  assert.equal(report.detail, "PROMETHEUS_URL is not set");
  assert.deepEqual(report.objectives.map((o) => [o.value, o.status]), [
    [null, "unknown"],
    [null, "unknown"],
    [null, "unknown"],
  ]);
});

Deno.test("createSloSource(): a metadata address is refused before any connection", async () => {
  const logs: unknown[] = [];
  const source = createSloSource({
    url: "http://169.254.169.254:9090",
    timeoutMs: 500,
    now: () => AT.getTime(),
    fetch: () => Promise.reject(new Error("must not be called")),
    log: { warn: (...a: unknown[]) => logs.push(a) } as never,
  });
  const report = await source.read();
  assert.equal(report.reason, "target-refused");
  assert.match(report.detail!, /^PROMETHEUS_URL's host resolves to a linkLocal address$/);
  // Neither the answer nor the log names the URL.
  assert.doesNotMatch(JSON.stringify([report, logs]), /169\.254/);
});

Deno.test("createSloSource(): a closed port and a silent server are unreachable", async () => {
  // A port nothing listens on: bind, note it, close.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const closed = await createSloSource({
    url: `http://127.0.0.1:${closedPort}`,
    timeoutMs: 2000,
    now: Date.now,
  }).read();
  assert.equal(closed.reason, "unreachable");
  assert.equal(closed.detail, "Prometheus is unreachable: connection failed");

  // Accepts the connection, never answers: the time budget ends the call.
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of silent) held.push(conn);
  })();
  try {
    const started = Date.now();
    const report = await createSloSource({
      url: `http://127.0.0.1:${(silent.addr as Deno.NetAddr).port}`,
      timeoutMs: 300,
      now: Date.now,
    }).read();
    assert.equal(report.reason, "unreachable");
    assert.equal(report.detail, "Prometheus is unreachable: no answer within 300 ms");
    assert.ok(Date.now() - started < 2000);
  } finally {
    silent.close();
    for (const c of held) c.close();
    await accepting.catch(() => {});
  }
});

Deno.test("createSloSource(): no redirect is followed; answers are reused for cacheMs", async () => {
  let calls = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    calls++;
    return new Response(null, { status: 302, headers: { Location: "http://169.254.169.254/" } });
  });
  try {
    let now = AT.getTime();
    const source = createSloSource({
      url: `http://127.0.0.1:${server.addr.port}`,
      timeoutMs: 2000,
      now: () => now,
      cacheMs: 10_000,
    });
    const [a, b] = await Promise.all([source.read(), source.read()]);
    assert.equal(a.reason, "bad-response");
    assert.equal(a.detail, "Prometheus answered HTTP 302");
    assert.equal(a, b);
    now += 9_999;
    assert.equal(await source.read(), a);
    assert.equal(calls, 1);
    now += 1;
    const later = await source.read();
    assert.equal(calls, 2);
    assert.equal(later.checked_at, new Date(now).toISOString());
  } finally {
    await server.shutdown();
  }
});
