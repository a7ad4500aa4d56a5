import assert from "node:assert/strict";
import { freePort } from "../../dev/ports.ts";
import { isPermanent } from "../queue/errors.ts";
import type { AlertEvent } from "./body.ts";
import { startAlertReceiver } from "../../testing/alerts.ts";
import { failureKind, postAlert, type WebhookSettings } from "./webhook.ts";

const event: AlertEvent = {
  event_id: "breaker:places:open:3",
  alert: "BreakerOpened",
  severity: "page",
  summary: "Circuit breaker places opened",
  labels: { breaker: "places" },
  at_ms: 1_765_000_000_000,
};

const settings = (url: string, more: Partial<WebhookSettings> = {}): WebhookSettings => ({
  url,
  format: "generic",
  authorization: null,
  timeoutMs: 10_000,
  allowPrivate: true,
  externalUrl: "http://127.0.0.1:1",
  ...more,
});

async function failure(p: Promise<unknown>): Promise<Error> {
  const err = await p.then(() => null, (e) => e);
  assert.ok(err instanceof Error, "expected a failure");
  return err;
}

Deno.test("408, 429 and 5xx are retried; other statuses are permanent", async () => {
  const answers = [408, 429, 500, 503, 400, 401, 404, 410];
  await using receiver = startAlertReceiver((n) => answers[n - 1]!);
  for (const status of answers) {
    const err = await failure(postAlert(event, settings(receiver.url)));
    const retried = status === 408 || status === 429 || status >= 500;
    assert.equal(failureKind(err), retried ? "retry" : "rejected", String(status));
    assert.equal(isPermanent(err), !retried, String(status));
    assert.match(err.message, new RegExp(`answered ${status}`));
  }
  assert.equal(receiver.calls.length, answers.length);
});

Deno.test("a receiver that does not answer in time is a retried timeout", async () => {
  let release = () => {};
  const held = new Promise<void>((r) => release = r);
  await using receiver = startAlertReceiver(async () => {
    await held;
    return 200;
  });
  try {
    const err = await failure(postAlert(event, settings(receiver.url, { timeoutMs: 300 })));
    assert.equal(failureKind(err), "retry");
    assert.match(err.message, /timed out after 300 ms/);
  } finally {
    release();
  }
});

Deno.test("a network error is retried and its text never names the URL or its credentials", async () => {
  const port = freePort();
  const url = `http://hook-user:s3cret-token@127.0.0.1:${port}/hooks/abc`;
  const err = await failure(postAlert(event, settings(url, { authorization: "Bearer s3cret" })));
  assert.equal(failureKind(err), "retry");
  assert.equal(err.cause, undefined);
  assert.doesNotMatch(err.message, new RegExp(`s3cret|${port}|hooks/abc|127\\.0\\.0\\.1`));
});
