import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { startUpstream } from "../testing/upstream.ts";
import { runTag, testNamespace } from "../testing/namespace.ts";
import { waitUntil } from "../testing/wait.ts";
import { createHttpApiProvider } from "../shared/email/providers/http_api.ts";
import { createLead } from "../shared/leads/repository.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { failedOnce } from "../testing/queue.ts";
import { Runner } from "./runner.ts";
import { sendEmailHandler } from "./tasks/send_email.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// The HTTP email provider's call site (docs/breakers.md, Call sites): the
// provider calls through the email breaker's fetch, as
// shared/email/from_config.ts wires it, and send_email adds no wrapper of its
// own (workers/tasks/registry.ts). The email API is a loopback server.

// Deps hold a Neon Pool; runner and registry hold SSE subscriptions (async teardown).
const opts = noSanitizers;

Deno.test({
  name: "send_email through the HTTP API provider: a refused message charges nothing, a 503 does",
  ...opts,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const ns = testNamespace();
  await using api = startUpstream();
  const breakers = createBreakerRegistry({
    redis: deps.redis,
    namespace: ns,
    flushMs: 5,
    policies: { email: { fail_max: 3, reset_timeout_ms: 60_000 } },
  });
  await breakers.start();
  const email = breakers.get("email");
  const queue = createQueue(deps.redis, { send_email: TASK_CATALOG.send_email }, {
    namespace: ns,
  });
  const runner = new Runner({
    queue,
    deps,
    breakers,
    pollMs: 50,
    random: () => 0.5,
    handlers: {
      send_email: sendEmailHandler({
        provider: createHttpApiProvider({
          url: `${api.url}/send`,
          apiKey: "test-api-key",
          fetch: (input, init) => email.fetch(input, init),
        }),
        from: "Pleasant Cove <hello@pleasantcove.test>",
        messageIdDomain: "pleasantcove.test",
        unsubscribeSecret: "test-unsubscribe-secret-0123456789",
        publicBaseUrl: "http://127.0.0.1:8787",
      }),
    },
  });
  const shared = async () => (await breakers.list()).find((b) => b.name === "email")!;
  const run = runTag();
  const leads: string[] = [];
  const send = async (tag: string) => {
    const lead = await createLead(deps.sql, {
      name: `Api Bakery ${run} ${tag}`,
      city: `Apiville-${run}`,
      email: `owner-${run}-${tag}@harbor.test`,
      source: "test",
      external_id: `bsa-${run}-${tag}`,
    }, "test");
    leads.push(lead.id);
    return (await queue.enqueue("send_email", {
      lead_id: lead.id,
      template: "intro",
      variables: { sender_name: "Ana" },
    })).id;
  };
  runner.start();
  try {
    await t.step("a 422 for the message is dead-lettered at once and charges nothing", async () => {
      api.mode = { status: 422 };
      const ids = [];
      for (let i = 0; i < email.policy.fail_max + 2; i++) ids.push(await send(`r${i}`));
      for (const info of await failedOnce(queue, ids)) {
        assert.equal(info.status, "dead", info.lastError ?? "");
        assert.equal(info.attempts, 1);
      }
      assert.ok(api.count >= ids.length, "every message reached the API");
      assert.equal(email.snapshot().consecutiveFailures, 0);
      assert.equal((await shared()).consecutiveFailures, 0);
      assert.equal((await shared()).state, "closed");
    });

    await t.step("a 503 from the API is retried and charged", async () => {
      api.mode = { status: 503 };
      const [info] = await failedOnce(queue, [await send("down")]);
      assert.equal(info!.status, "retrying", info!.lastError ?? "");
      assert.match(info!.lastError!, /503/);
      // Its retry may be charged too before this reads it: at least this one.
      await waitUntil(async () => (await shared()).consecutiveFailures >= 1, {
        timeoutMs: 10_000,
        what: "the email failure in Redis",
      });
    });
  } finally {
    await runner.stop();
    await breakers.stop();
    await deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1)", [leads]);
    await deps.sql.query("DELETE FROM email_messages WHERE business_id = ANY($1)", [leads]);
    await deps.sql.query("DELETE FROM businesses WHERE id = ANY($1)", [leads]);
  }
});
