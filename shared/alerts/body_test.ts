import assert from "node:assert/strict";
import { alertBody, type AlertEvent } from "./body.ts";

const event: AlertEvent = {
  event_id: "dlq:6f1c:1765000000000",
  alert: "TaskDeadLettered",
  severity: "ticket",
  summary: "Task send_email 6f1c was dead-lettered",
  description: "Max retries (5) exceeded",
  labels: { task_type: "send_email", task_id: "6f1c" },
  at_ms: Date.UTC(2026, 11, 7, 5, 0, 0),
};

Deno.test("the alertmanager body has the webhook receiver's version 4 shape", async () => {
  const body = await alertBody(event, "alertmanager", "https://api.example") as Record<
    string,
    unknown
  >;
  assert.equal(body.version, "4");
  assert.equal(body.status, "firing");
  assert.equal(body.receiver, "pleasant-cove");
  assert.equal(body.externalURL, "https://api.example");
  assert.deepEqual(body.groupLabels, { alertname: "TaskDeadLettered" });
  assert.equal(body.groupKey, '{}:{alertname="TaskDeadLettered"}');
  assert.equal(body.truncatedAlerts, 0);
  const alerts = body.alerts as Record<string, unknown>[];
  assert.equal(alerts.length, 1);
  const [alert] = alerts;
  assert.deepEqual(alert!.labels, {
    alertname: "TaskDeadLettered",
    severity: "ticket",
    task_type: "send_email",
    task_id: "6f1c",
  });
  assert.deepEqual(alert!.annotations, {
    summary: event.summary,
    description: event.description,
  });
  assert.equal(alert!.status, "firing");
  assert.equal(alert!.startsAt, "2026-12-07T05:00:00.000Z");
  assert.equal(alert!.endsAt, "0001-01-01T00:00:00Z");
  assert.match(String(alert!.fingerprint), /^[0-9a-f]{16}$/);
  // The same event always has the same fingerprint; another event another.
  const again = await alertBody(event, "alertmanager", "x") as {
    alerts: { fingerprint: string }[];
  };
  const other = await alertBody({ ...event, event_id: "dlq:other:1" }, "alertmanager", "x") as {
    alerts: { fingerprint: string }[];
  };
  assert.equal(again.alerts[0]!.fingerprint, alert!.fingerprint);
  assert.notEqual(other.alerts[0]!.fingerprint, alert!.fingerprint);
});

Deno.test("the generic body is one flat object per event", async () => {
  assert.deepEqual(await alertBody(event, "generic", "https://api.example"), {
    id: event.event_id,
    alert: "TaskDeadLettered",
    severity: "ticket",
    summary: event.summary,
    description: event.description,
    labels: event.labels,
    at: "2026-12-07T05:00:00.000Z",
  });
  const { description: _, ...bare } = event;
  assert.equal("description" in (await alertBody(bare, "generic", "") as object), false);
});
