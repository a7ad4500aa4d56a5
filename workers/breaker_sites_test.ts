import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { createBreakerRegistry } from "../shared/breakers/registry.ts";
import { startUpstream } from "../testing/upstream.ts";
import { runTag, testNamespace } from "../testing/namespace.ts";
import { waitUntil } from "../testing/wait.ts";
import type { EmailProvider } from "../shared/email/provider.ts";
import { createSmtpProvider } from "../shared/email/providers/smtp.ts";
import { createLead } from "../shared/leads/repository.ts";
import { createQueue } from "../shared/queue/queue.ts";
import { TASK_CATALOG } from "../shared/tasks/catalog.ts";
import { upstreamTaskCatalog } from "../shared/upstreams/queued_request.ts";
import { forwardTaskType, type Upstream } from "../shared/upstreams/upstream.ts";
import { freePort } from "../dev/ports.ts";
import { failedOnce } from "../testing/queue.ts";
import { Runner, type TaskContext } from "./runner.ts";
import { forwardRequestHandlers } from "./tasks/forward_request.ts";
import { bookAppointmentHandler } from "./tasks/book_appointment.ts";
import { leadWriteHandler } from "./tasks/lead_write.ts";
import { scrapeLeadsHandler } from "./tasks/scrape_leads.ts";
import { sendEmailHandler } from "./tasks/send_email.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

// The worker call sites that run under a breaker (docs/breakers.md, Call
// sites), through the Runner: a bug or a malformed payload charges nothing
// and the task is retried as any failure (the runner does not tell bugs from
// outages; maxAttempts then sends it to the DLQ); a real failure of the
// dependency at the same site is charged. Real Redis, PostgreSQL, loopback
// servers and nodemailer; the only double is the email provider that throws
// the bug (an email API cannot run here).

// Deps hold a Neon Pool; runner and registry hold SSE subscriptions (async teardown).
const opts = noSanitizers;

Deno.test(
  { name: "worker breaker call sites: bugs charge nothing, outages do", ...opts },
  async (t) => {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const ns = testNamespace();
    await using upstream = startUpstream();
    await using placesApi = startUpstream();
    const control: Upstream = {
      name: "control",
      baseUrl: upstream.url,
      prefix: "/v1/control",
      methods: ["POST"],
      principals: ["*"],
      timeoutMs: 5_000,
      breaker: "control",
      forwardAuthorization: false,
      passSetCookie: false,
      forwardHeaders: [],
    };
    const unreachable: Upstream = {
      ...control,
      name: "gone",
      baseUrl: `http://127.0.0.1:${freePort()}`,
      breaker: "control",
    };
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      namespace: ns,
      flushMs: 5,
      policies: {
        control: { fail_max: 3, reset_timeout_ms: 60_000 },
        email: { fail_max: 3, reset_timeout_ms: 60_000 },
        database: { fail_max: 3, reset_timeout_ms: 60_000 },
        places: { fail_max: 3, reset_timeout_ms: 60_000 },
      },
    });
    await breakers.start();
    const catalog = {
      send_email: TASK_CATALOG.send_email,
      apply_lead_write: TASK_CATALOG.apply_lead_write,
      scrape_leads: TASK_CATALOG.scrape_leads,
      book_appointment: TASK_CATALOG.book_appointment,
      ...upstreamTaskCatalog([control, unreachable]),
    };
    const queue = createQueue(deps.redis, catalog, { namespace: ns });

    // The provider the send_email site calls through the email breaker: a
    // client with a bug, or nodemailer against an SMTP port nobody listens on
    // (chosen per recipient, so the retries of one kind stay that kind).
    const buggy: EmailProvider = {
      name: "buggy",
      send: () =>
        Promise.reject(new TypeError("Cannot read properties of undefined (reading 'id')")),
    };
    const smtp = createSmtpProvider(`smtp://127.0.0.1:${freePort()}`, {
      connectionTimeoutMs: 10_000,
    });
    const applyLeadWrite = leadWriteHandler({ breaker: breakers.get("database") });
    const runner = new Runner({
      queue,
      deps,
      breakers,
      pollMs: 50,
      random: () => 0.5,
      handlers: {
        ...forwardRequestHandlers([control, unreachable], breakers),
        apply_lead_write: applyLeadWrite,
        book_appointment: bookAppointmentHandler({ queue }),
        scrape_leads: scrapeLeadsHandler({
          places: { apiKey: "test-key", baseUrl: placesApi.url, qps: 1000 },
          placesBreaker: breakers.get("places"),
          defaultPhoneRegion: "US",
        }),
        send_email: sendEmailHandler({
          provider: {
            name: "switch",
            send: (msg, o) => (msg.to.includes("-smtp@") ? smtp : buggy).send(msg, o),
          },
          breaker: breakers.get("email"),
          from: "Pleasant Cove <hello@pleasantcove.test>",
          messageIdDomain: "pleasantcove.test",
          unsubscribeSecret: "test-unsubscribe-secret-0123456789",
          publicBaseUrl: "http://127.0.0.1:8787",
        }),
      },
    });
    const shared = async (name: string) => (await breakers.list()).find((b) => b.name === name)!;
    const forward = (u: Upstream, headers: [string, string][] = []) =>
      queue.enqueue(forwardTaskType(u.name), {
        method: "POST",
        path: "/echo",
        headers,
        body_b64: btoa('{"a":1}'),
        idempotency_key: crypto.randomUUID(),
        queued_at: new Date().toISOString(),
      });
    const run = runTag();
    const leads: string[] = [];
    const scrapes: string[] = [];
    runner.start();
    try {
      await t.step(
        "forward_request: a malformed stored header fails the task (retried) and charges nothing",
        async () => {
          const c = breakers.get("control");
          const tasks = [];
          for (let i = 0; i < c.policy.fail_max + 2; i++) {
            tasks.push(await forward(control, [["x-note", "line\r\nbreak"]]));
          }
          const infos = await failedOnce(queue, tasks.map((x) => x.id));
          for (const info of infos) {
            assert.equal(info.status, "retrying", info.lastError ?? "");
            assert.match(info.lastError!, /TypeError/);
          }
          assert.equal(upstream.count, 0, "nothing reached the upstream");
          assert.equal(c.snapshot().consecutiveFailures, 0);
          assert.equal((await shared("control")).consecutiveFailures, 0);
          assert.equal((await shared("control")).state, "closed");
        },
      );

      await t.step(
        "forward_request: an upstream 503 and a refused connection are charged",
        async () => {
          upstream.mode = { status: 503 };
          const [down] = await failedOnce(queue, [(await forward(control)).id]);
          assert.match(down!.lastError!, /answered 503/);
          const [refused] = await failedOnce(queue, [(await forward(unreachable)).id]);
          assert.equal(refused!.status, "retrying");
          // Their retries may be charged too before this reads it: at least these two.
          await waitUntil(async () => (await shared("control")).consecutiveFailures >= 2, {
            timeoutMs: 10_000,
            what: "two control failures in Redis",
          });
          upstream.mode = { status: 200 };
        },
      );

      await t.step(
        "send_email: a bug inside the provider call fails the task (retried) and charges nothing",
        async () => {
          const email = breakers.get("email");
          const ids = [];
          for (let i = 0; i < email.policy.fail_max + 2; i++) {
            const lead = await createLead(deps.sql, {
              name: `Breaker Bakery ${run} ${i}`,
              city: `Breakerville-${run}`,
              email: `owner-${run}-${i}@harbor.test`,
              source: "test",
              external_id: `bs-${run}-${i}`,
            }, "test");
            leads.push(lead.id);
            ids.push(
              (await queue.enqueue("send_email", {
                lead_id: lead.id,
                template: "intro",
                variables: { sender_name: "Ana" },
              })).id,
            );
          }
          const infos = await failedOnce(queue, ids);
          for (const info of infos) {
            assert.equal(info.status, "retrying", info.lastError ?? "");
            assert.match(info.lastError!, /Cannot read properties/);
          }
          assert.equal(email.snapshot().consecutiveFailures, 0);
          assert.equal((await shared("email")).consecutiveFailures, 0);
          assert.equal((await shared("email")).state, "closed");
        },
      );

      await t.step(
        "send_email: an SMTP server that refuses the connection is charged",
        async () => {
          const lead = await createLead(deps.sql, {
            name: `Breaker Bakery ${run} smtp`,
            city: `Breakerville-${run}`,
            email: `owner-${run}-smtp@harbor.test`,
            source: "test",
            external_id: `bs-${run}-smtp`,
          }, "test");
          leads.push(lead.id);
          const task = await queue.enqueue("send_email", {
            lead_id: lead.id,
            template: "intro",
            variables: { sender_name: "Ana" },
          });
          const [info] = await failedOnce(queue, [task.id]);
          assert.equal(info!.status, "retrying", info!.lastError ?? "");
          assert.doesNotMatch(info!.lastError!, /Cannot read properties/);
          // Its retry may be charged too before this reads it: at least this one.
          await waitUntil(async () => (await shared("email")).consecutiveFailures >= 1, {
            timeoutMs: 10_000,
            what: "the email failure in Redis",
          });
        },
      );

      await t.step(
        "apply_lead_write: a duplicate lead is dead-lettered at once and charges nothing",
        async () => {
          const database = breakers.get("database");
          const input = {
            name: `Breaker Cafe ${run}`,
            city: `Breakerville-${run}`,
            source: "places",
            external_id: `bs-cafe-${run}`,
          };
          leads.push((await createLead(deps.sql, input, "test")).id);
          const ids = [];
          for (let i = 0; i < database.policy.fail_max + 2; i++) {
            ids.push(
              (await queue.enqueue("apply_lead_write", {
                op: "create",
                input,
                source: "api:sa:minerva",
              })).id,
            );
          }
          for (const info of await failedOnce(queue, ids)) {
            assert.equal(info.status, "dead", info.lastError ?? "");
            assert.equal(info.attempts, 1);
            assert.match(info.lastError!, /The lead already exists/);
          }
          assert.equal(database.snapshot().consecutiveFailures, 0);
          assert.equal((await shared("database")).consecutiveFailures, 0);
          assert.equal((await shared("database")).state, "closed");
        },
      );

      await t.step("apply_lead_write: a database nobody answers at is charged", async () => {
        // The same handler against a WebSocket proxy port nobody listens on.
        const wsProxy = stack.settings.database.wsProxy;
        assert.ok(wsProxy, "the test stack fronts PostgreSQL with a WebSocket proxy");
        const port = freePort();
        const dead = stack.makeDeps({ NEON_WS_PROXY: wsProxy.replace(/:\d+/, `:${port}`) });
        const ctx: TaskContext = {
          deps: dead,
          taskId: crypto.randomUUID(),
          attempt: 1,
          leaseToken: "t",
          signal: new AbortController().signal,
          log: dead.log,
        };
        const payload = TASK_CATALOG.apply_lead_write.schema.parse({
          op: "create",
          input: { name: `Unreached Cafe ${run}`, city: `Breakerville-${run}`, source: "api" },
          source: "api:sa:minerva",
        });
        await assert.rejects(applyLeadWrite(payload, ctx));
        await waitUntil(async () => (await shared("database")).consecutiveFailures >= 1, {
          timeoutMs: 10_000,
          what: "the database failure in Redis",
        });
      });

      await t.step(
        "book_appointment (catalog breaker database, pause-only): a missing lead is dead-lettered and charges nothing",
        async () => {
          const database = breakers.get("database");
          const before = (await shared("database")).consecutiveFailures;
          const ids = [];
          for (let i = 0; i < database.policy.fail_max + 2; i++) {
            ids.push(
              (await queue.enqueue("book_appointment", {
                lead_id: crypto.randomUUID(),
                starts_at: new Date(Date.now() + 86_400_000).toISOString(),
                duration_min: 30,
                attendee_email: `nobody-${run}@harbor.test`,
              })).id,
            );
          }
          for (const info of await failedOnce(queue, ids)) {
            assert.equal(info.status, "dead", info.lastError ?? "");
            assert.match(info.lastError!, /does not exist/);
          }
          assert.equal((await shared("database")).consecutiveFailures, before);
          assert.equal((await shared("database")).state, "closed");
        },
      );

      await t.step(
        "scrape_leads: a places answer the client cannot parse fails the task and charges nothing",
        async () => {
          const places = breakers.get("places");
          // 200 with a body that is not the documented JSON: the provider is up,
          // the parse (ours) fails after the guarded fetch judged the 200.
          placesApi.mode = { status: 200 };
          const ids = [];
          for (let i = 0; i < places.policy.fail_max + 2; i++) {
            ids.push(
              (await queue.enqueue("scrape_leads", { provider: "places", query: `bakery ${i}` }))
                .id,
            );
          }
          scrapes.push(...ids);
          for (const info of await failedOnce(queue, ids)) {
            assert.equal(info.status, "retrying", info.lastError ?? "");
            assert.match(info.lastError!, /answered 200 with a body that is not JSON/);
          }
          assert.ok(placesApi.count >= ids.length, "every task reached the places API");
          assert.equal(places.snapshot().consecutiveFailures, 0);
          assert.equal((await shared("places")).consecutiveFailures, 0);
          assert.equal((await shared("places")).state, "closed");
        },
      );

      await t.step("scrape_leads: a places 503 is charged", async () => {
        placesApi.mode = { status: 503 };
        const id = (await queue.enqueue("scrape_leads", { provider: "places", query: "down" })).id;
        scrapes.push(id);
        const [info] = await failedOnce(queue, [id]);
        assert.equal(info!.status, "retrying", info!.lastError ?? "");
        await waitUntil(async () => (await shared("places")).consecutiveFailures >= 1, {
          timeoutMs: 10_000,
          what: "the places failure in Redis",
        });
      });
    } finally {
      await runner.stop();
      await breakers.stop();
      if (leads.length > 0) {
        await deps.sql.query("DELETE FROM lead_events WHERE lead_id = ANY($1)", [leads]);
        await deps.sql.query("DELETE FROM email_messages WHERE business_id = ANY($1)", [leads]);
        await deps.sql.query("DELETE FROM businesses WHERE id = ANY($1)", [leads]);
      }
      if (scrapes.length > 0) {
        await deps.sql.query("DELETE FROM scrape_runs WHERE task_id = ANY($1)", [scrapes]);
      }
    }
  },
);
