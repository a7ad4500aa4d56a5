/**
 * The two bodies of an alert webhook call (ALERT_WEBHOOK_FORMAT):
 *
 * - `alertmanager`: the payload Alertmanager's webhook receiver sends
 *   (`version: "4"`, `status`, `receiver`, `groupKey`, `alerts[]` with
 *   `labels`, `annotations`, `startsAt`, `endsAt`, `fingerprint`…), so any
 *   receiver written for Alertmanager (PagerDuty/Opsgenie bridges, chat
 *   relays) accepts it. One event is one group of one firing alert; our
 *   events are moments, not states, so no `resolved` follows.
 * - `generic`: one flat JSON object per event.
 *
 * @module
 */
import type { z } from "zod";
import type { DeliverAlertPayload } from "../tasks/catalog.ts";

/** One alert event (the `deliver_alert` payload). */
export type AlertEvent = z.output<typeof DeliverAlertPayload>;

/** ALERT_WEBHOOK_FORMAT. */
export type AlertFormat = "alertmanager" | "generic";

/** The receiver name in Alertmanager bodies. */
const RECEIVER = "pleasant-cove";
/** The zero time Alertmanager sends as `endsAt` of a firing alert. */
const ZERO_TIME = "0001-01-01T00:00:00Z";

/** All labels of the event, `alertname` and `severity` included. */
function allLabels(event: AlertEvent): Record<string, string> {
  return { ...event.labels, alertname: event.alert, severity: event.severity };
}

/** Sorted `{k="v",…}` text, as Alertmanager renders label sets in `groupKey`. */
function labelSet(labels: Record<string, string>): string {
  const parts = Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`);
  return `{${parts.join(",")}}`;
}

/** The Alertmanager webhook payload (version 4) of one event. */
export async function alertmanagerBody(event: AlertEvent, externalUrl: string) {
  const labels = allLabels(event);
  const annotations: Record<string, string> = { summary: event.summary };
  if (event.description !== undefined) annotations.description = event.description;
  const group = { alertname: event.alert };
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(event.event_id),
  );
  const fingerprint = [...new Uint8Array(digest).slice(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0")).join("");
  return {
    version: "4",
    groupKey: `{}:${labelSet(group)}`,
    truncatedAlerts: 0,
    status: "firing",
    receiver: RECEIVER,
    groupLabels: group,
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: externalUrl,
    alerts: [{
      status: "firing",
      labels,
      annotations,
      startsAt: new Date(event.at_ms).toISOString(),
      endsAt: ZERO_TIME,
      generatorURL: "",
      fingerprint,
    }],
  };
}

/** The generic body of one event. */
export function genericBody(event: AlertEvent) {
  return {
    id: event.event_id,
    alert: event.alert,
    severity: event.severity,
    summary: event.summary,
    ...(event.description !== undefined ? { description: event.description } : {}),
    labels: event.labels,
    at: new Date(event.at_ms).toISOString(),
  };
}

/** The body of `event` in `format`. */
export async function alertBody(
  event: AlertEvent,
  format: AlertFormat,
  externalUrl: string,
): Promise<unknown> {
  return format === "alertmanager"
    ? await alertmanagerBody(event, externalUrl)
    : genericBody(event);
}
