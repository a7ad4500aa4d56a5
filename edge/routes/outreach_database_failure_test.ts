/**
 * Found by `deno task chaos`: while Postgres was away, the email and booking
 * routes' lead reads threw, the app answered an opaque 500, the idempotency
 * middleware stored it, and every retry of the Idempotency-Key replayed that
 * 500 after Postgres was back. Now a database failure before the hand-off is
 * 503 `dependency-unavailable` with Retry-After, not stored, and the retry
 * runs. The failure is real: the Neon driver's connection goes through the
 * fault proxy, which resets it.
 */
import assert from "node:assert/strict";
import { startFaultProxy } from "../../dev/chaos/fault_proxy.ts";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

Deno.test({
  name:
    "POST /v1/outreach/emails and /v1/appointments answer 503 while Postgres is unreachable, and a retry of the key runs",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const neonPort = Number(/:(\d+)\//.exec(stack.settings.database.wsProxy ?? "")?.[1]);
    await using proxy = await startFaultProxy({ upstreamPort: neonPort });
    const h = await routeHarness(stack, {
      env: { NEON_WS_PROXY: `127.0.0.1:${proxy.port}/v1` },
    });
    try {
      const lead = await h.lead({ name: `Harbor Bakery ${h.run}` });
      const booked = await h.lead({ name: `Pier Cafe ${h.run}` });
      const requests = [
        {
          path: "/v1/outreach/emails",
          json: {
            lead_id: lead.id,
            template: "intro",
            to: `owner-${h.run}@harbor.example`,
            variables: { sender_name: "Maya" },
          },
        },
        {
          path: "/v1/appointments",
          json: {
            lead_id: booked.id,
            starts_at: new Date(Date.now() + 86_400_000).toISOString(),
            duration_min: 30,
            attendee_email: `owner-${h.run}@pier.example`,
            confirmation: { sender_name: "Maya" },
          },
        },
      ];
      proxy.setFault({ kind: "reset" });
      for (const r of requests) {
        const headers = { "idempotency-key": `db-down-${r.path}-${h.run}` };
        const res = await h.call("POST", r.path, { json: r.json, headers });
        const body = await res.json();
        assert.equal(res.status, 503, JSON.stringify(body));
        assert.equal(body.code, "dependency-unavailable");
        assert.ok(Number(res.headers.get("retry-after")) > 0, "Retry-After on the 503");
      }
      proxy.setFault({ kind: "pass" });
      for (const r of requests) {
        const headers = { "idempotency-key": `db-down-${r.path}-${h.run}` };
        const res = await h.call("POST", r.path, { json: r.json, headers });
        const body = await res.json();
        assert.equal(res.status, 202, JSON.stringify(body));
        assert.equal(res.headers.get("idempotency-replayed"), null, "the 503 was not stored");
        assert.equal((await h.queue.getTask(body.task_id))?.status, "pending");
      }
    } finally {
      await h.cleanup();
      await h.stop();
    }
  },
});
