/**
 * Outreach effects under a worker crash: real worker processes
 * (workers/main.ts) run `send_email` and `book_appointment` (and the
 * confirmation emails the bookings enqueue) against the test stack's
 * Postgres; one worker is SIGKILLed while it holds leases, a replacement
 * starts, and every effect must still happen exactly once.
 *
 * The worker has no queue-namespace setting (it always uses "pc"), so the
 * queue lives on a PRIVATE redis-server behind its own Upstash REST bridge:
 * the shared stack's queue (and the workers other suites start on it) never
 * sees these tasks. Postgres is the shared one; the rows are told apart by a
 * per-run lead source and deleted at the end.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import type { AddressInfo } from "node:net";
// @ts-types="@types/smtp-server"
import { SMTPServer } from "smtp-server";
import { useTestStack } from "../testing/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { createRedis } from "../shared/deps.ts";
import { leafParts, parseEntity } from "../testing/email.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import type { EnqueueItem, TaskInfo, TaskQueue } from "../shared/queue/queue.ts";
import { getTasks } from "../testing/queue.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess, privateRedis } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { runTag } from "../testing/namespace.ts";

/** Leads, each sent one `intro`. */
const LEADS = 300;
/** Bookings, for the first BOOKINGS leads; each enqueues one confirmation email. */
const BOOKINGS = 150;
const TASKS = LEADS + 2 * BOOKINGS;
const EMAILS = LEADS + BOOKINGS;
/** The kill comes once this many emails were delivered (of EMAILS). */
const KILL_AFTER = 90;
const LEASE_MS = 1500;

/** One delivered message, as the receiving side saw it. */
interface Delivery {
  messageId: string;
  calendar: boolean;
}

/** Where the workers' email goes, seen from the test. */
interface Outbox {
  /** Worker environment selecting the provider. */
  env: Record<string, string>;
  /** A directory the workers must be allowed to write. */
  writeDir?: string;
  /** Deliveries so far (cheap; polled for the kill). */
  count(): number;
  /** Every delivery; duplicates included where the provider can produce them. */
  deliveries(): Promise<Delivery[]>;
  /** A note for the report line. */
  note(): string;
  close(): Promise<void>;
}

function toDelivery(raw: string): Delivery {
  const top = parseEntity(raw);
  const messageId = top.headers.get("message-id");
  assert.ok(messageId, `a delivered message without a Message-ID:\n${raw.slice(0, 500)}`);
  const calendar = leafParts(top).some((p) =>
    (p.headers.get("content-type") ?? "").toLowerCase().startsWith("text/calendar")
  );
  return { messageId, calendar };
}

/** The `file` provider: .eml files in a temp directory. */
async function fileOutbox(): Promise<Outbox> {
  const dir = await Deno.makeTempDir({ prefix: "pco-k9-outbox-" });
  const names = (suffix: string) =>
    [...Deno.readDirSync(dir)].filter((e) => e.isFile && e.name.endsWith(suffix)).map((e) =>
      e.name
    );
  return {
    env: { EMAIL_PROVIDER: "file", EMAIL_DIR: dir },
    writeDir: dir,
    count: () => names(".eml").length,
    deliveries: async () =>
      await Promise.all(
        names(".eml").map(async (n) => toDelivery(await Deno.readTextFile(`${dir}/${n}`))),
      ),
    // A write cut short by the kill leaves its temp file (never renamed to .eml).
    note: () => `${names(".tmp").length} temp file(s) left by the killed worker`,
    close: () => Deno.remove(dir, { recursive: true }),
  };
}

/** The `smtp` provider against a real smtp-server on 127.0.0.1 that keeps what it accepts. */
async function smtpOutbox(): Promise<Outbox> {
  const raws: string[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Uint8Array[] = [];
      stream.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      // "end" comes only with the final "." line: a connection cut mid-DATA delivers nothing.
      stream.on("end", () => {
        raws.push(new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c]))));
        callback(null, "Ok: queued");
      });
    },
  });
  // A client killed mid-session resets its connection (ECONNRESET): expected here, counted.
  let connectionErrors = 0;
  server.on("error", () => connectionErrors++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    env: { EMAIL_PROVIDER: "smtp", SMTP_URL: `smtp://127.0.0.1:${port}` },
    count: () => raws.length,
    deliveries: () => Promise.resolve(raws.map(toDelivery)),
    note: () => `${connectionErrors} connection(s) reset by the killed worker`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A workers/main.ts process; the file provider needs write access to EMAIL_DIR. */
function startWorker(env: Record<string, string>, writeDir: string | undefined): AppProcess {
  return new AppProcess("workers/main.ts", env, {
    permissions: writeDir ? [`--allow-write=${writeDir}`] : [],
  });
}

/** Inserts `n` leads in ONE statement; returns their ids and emails in order. */
async function insertLeads(sql: Pool, run: string, n: number) {
  const names: string[] = [];
  const emails: string[] = [];
  const externalIds: string[] = [];
  for (let i = 0; i < n; i++) {
    names.push(`Kill9 Bakery ${run} ${i}`);
    emails.push(`owner-${i}@k9-${run}.example`);
    externalIds.push(`${run}-${i}`);
  }
  const { rows } = await sql.query<{ id: string; external_id: string }>(
    `INSERT INTO businesses (name, city, email, source, external_id)
     SELECT name, $2, email, $3, external_id
       FROM unnest($1::text[], $4::text[], $5::text[]) AS l(name, email, external_id)
     RETURNING id, external_id`,
    [names, `Killtown-${run}`, `test:outreach_kill9:${run}`, emails, externalIds],
  );
  const byExternal = new Map(rows.map((r) => [r.external_id, r.id]));
  return externalIds.map((e, i) => ({ id: byExternal.get(e)!, email: emails[i]! }));
}

async function deleteLeads(sql: Pool, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  for (
    const statement of [
      "DELETE FROM lead_events WHERE lead_id = ANY($1::uuid[])",
      "DELETE FROM email_messages WHERE business_id = ANY($1::uuid[])",
      "DELETE FROM appointments WHERE business_id = ANY($1::uuid[])",
      "DELETE FROM businesses WHERE id = ANY($1::uuid[])",
    ]
  ) await sql.query(statement, [ids]);
}

/** The intro for every lead, with a booking after every second one (so the kill hits both). */
function workItems(leads: { id: string; email: string }[]): EnqueueItem[] {
  const startsAt = Date.now() + 2 * 86_400_000;
  const items: EnqueueItem[] = [];
  leads.forEach((lead, i) => {
    items.push({
      type: "send_email",
      payload: { lead_id: lead.id, template: "intro", variables: { sender_name: "Ana" } },
    });
    if (i % 2 === 1 && (i - 1) / 2 < BOOKINGS) {
      const b = (i - 1) / 2;
      const booked = leads[b]!;
      items.push({
        type: "book_appointment",
        payload: {
          lead_id: booked.id,
          starts_at: new Date(startsAt + b * 60_000).toISOString(),
          duration_min: 30,
          attendee_email: booked.email,
          confirmation: { meeting_url: `https://meet.example/${b}` },
        },
      });
    }
  });
  return items;
}

/** Ids of the tasks whose lease is held by `workerId` (the `worker` field of a running task). */
async function leasesOf(queue: TaskQueue, workerId: string): Promise<string[]> {
  const { redis, keys } = queue.ctx;
  const ids = (await redis.zrange(keys.leases, 0, -1)) as string[];
  const owners = await Promise.all(ids.map((id) => redis.hget(keys.task(id), "worker")));
  return ids.filter((_, i) => owners[i] === workerId);
}

function count<T>(items: T[], key: (t: T) => string): Map<string, number> {
  const out = new Map<string, number>();
  for (const t of items) out.set(key(t), (out.get(key(t)) ?? 0) + 1);
  return out;
}

/**
 * The scenario, for one provider: asserts every exactly-once property and
 * prints one JSON line of what happened. `maxDuplicates` is how many repeated
 * deliveries (same Message-ID) the provider may produce: none for the file
 * provider (a repeat replaces the file), at most one per interrupted task for
 * SMTP (accepted by the server, then killed before the ledger recorded it).
 */
async function killMidBatch(
  outbox: Outbox,
  options: { maxDuplicates: "none" | "held" },
): Promise<void> {
  const started = performance.now();
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const redis = await privateRedis();
  const env = {
    ...stack.env(),
    ...redis.env,
    ...outbox.env,
    APP_ENV: "test",
    LOG_LEVEL: "info",
    WORKER_CONCURRENCY: "20",
    WORKER_LEASE_MS: String(LEASE_MS),
    WORKER_POLL_MS: "200",
    WORKER_SHUTDOWN_GRACE_MS: "5000",
    EMAIL_MESSAGE_ID_DOMAIN: `k9-${run}.example`,
    // Recurring tasks would add to the queue's enqueue count this test checks.
    SCHEDULES: JSON.stringify({
      refresh_lead_metrics: { enabled: false },
      apply_retention: { enabled: false },
      retrain_lead_model: { enabled: false },
    }),
  };
  const config = parseConfig(env);
  // The platform catalog in the worker's namespace, on the private Redis.
  const queue = queueFromConfig(createRedis(config.redis), config);
  const workers: AppProcess[] = [];
  let leadIds: string[] = [];
  try {
    const leads = await insertLeads(deps.sql, run, LEADS);
    leadIds = leads.map((l) => l.id);
    assert.equal(new Set(leadIds).size, LEADS);
    const items = workItems(leads);
    const enqueued = await queue.enqueueMany(items);
    assert.ok(enqueued.every((r) => r.created));
    const ids = enqueued.map((r) => r.id);
    const bookingIds = ids.filter((_, i) => items[i]!.type === "book_appointment");
    assert.equal(bookingIds.length, BOOKINGS);

    const victim = startWorker(env, outbox.writeDir);
    const survivor = startWorker(env, outbox.writeDir);
    workers.push(victim, survivor);
    const victimId = String((await victim.waitForLog("worker ready", 20_000)).worker_id);
    await survivor.waitForLog("worker ready", 20_000);

    // Kill mid-batch: enough delivered to be well under way, and the victim holds leases.
    await waitUntil(
      async () => outbox.count() >= KILL_AFTER && (await leasesOf(queue, victimId)).length > 0,
      {
        timeoutMs: 20_000,
        everyMs: 10,
        what: `${KILL_AFTER} deliveries with the victim holding leases`,
        detail: async () => JSON.stringify({ delivered: outbox.count(), ...await queue.stats() }),
      },
    );
    const deliveredAtKill = outbox.count();
    const killed = await victim.stop("SIGKILL");
    assert.equal(killed.status.signal, "SIGKILL");
    // Requests the victim sent just before dying may still land; its leases
    // then stay put until they expire (≥ LEASE_MS - heartbeat after the kill).
    await new Promise((r) => setTimeout(r, 150));
    const held = await leasesOf(queue, victimId);
    assert.ok(held.length > 0, "the victim held no lease at the kill: it interrupted nothing");

    const replacement = startWorker(env, outbox.writeDir);
    workers.push(replacement);
    await replacement.waitForLog("worker ready", 20_000);
    // Done when every task finished, one way or the other (a dead one fails below, with its reason).
    const finished = async () => {
      const st = await queue.stats();
      return Number(st.succeeded ?? 0) + Number(st.dead ?? 0) >= TASKS;
    };
    await waitUntil(finished, {
      timeoutMs: 25_000,
      everyMs: 50,
      what: `all ${TASKS} tasks to finish`,
      detail: async () => {
        const pending = ((await getTasks(queue, ids)) as TaskInfo[])
          .filter((t) => t.status !== "succeeded")
          .map((t) => ({ type: t.type, status: t.status, attempts: t.attempts, err: t.lastError }));
        return JSON.stringify({ delivered: outbox.count(), ...await queue.stats(), pending });
      },
    });
    const deadIds = (await queue.ctx.redis.zrange(queue.ctx.keys.dlq, 0, -1)) as string[];
    assert.deepEqual(
      ((await getTasks(queue, deadIds)) as TaskInfo[]).map((t) => ({
        type: t.type,
        attempts: t.attempts,
        held_at_kill: held.includes(t.id),
        reason: t.dlqReason,
      })),
      [],
      "no task may be dead-lettered",
    );
    for (const w of [survivor, replacement]) {
      const stopped = await w.stop("SIGTERM");
      assert.equal(stopped.code, 0, stopped.stderr);
    }

    // --- The queue: every task succeeded, nothing dead, the victim's tasks ran again.
    const stats = await queue.stats();
    assert.equal(Number(stats.enqueued), TASKS, "confirmations were enqueued once each");
    assert.equal(Number(stats.succeeded), TASKS);
    assert.equal(Number(stats.dead ?? 0), 0);
    assert.equal(await queue.ctx.redis.zcard(queue.ctx.keys.dlq), 0);
    assert.equal(await queue.ctx.redis.zcard(queue.ctx.keys.leases), 0);
    const bookings = (await getTasks(queue, bookingIds)) as TaskInfo[];
    const confirmationIds = bookings.map((t) =>
      (t.result as { confirmation_task_id: string }).confirmation_task_id
    );
    assert.deepEqual(
      bookings.filter((t) => (t.result as { status: string }).status !== "booked"),
      [],
    );
    assert.equal(new Set(confirmationIds).size, BOOKINGS);
    const all = (await getTasks(queue, [...ids, ...confirmationIds])) as TaskInfo[];
    assert.deepEqual(
      all.filter((t) => t?.status !== "succeeded").map((t) => [t?.id, t?.status, t?.lastError]),
      [],
    );
    const byId = new Map(all.map((t) => [t.id, t]));
    for (const id of held) {
      assert.ok(byId.get(id)!.attempts >= 2, `task ${id} held by the victim ran only once`);
    }
    const rerun = all.filter((t) => t.attempts > 1);
    const recovered = [survivor, replacement].flatMap((w) => w.logsWith("took back expired leases"))
      .reduce((sum, l) => sum + Number(l.recovered), 0);
    assert.ok(recovered >= held.length, `recovered ${recovered} < held ${held.length}`);
    const emailResults = count(
      all.filter((t) => t.type === "send_email"),
      (t) => (t.result as { status: string }).status,
    );
    assert.deepEqual(
      [...emailResults.keys()].filter((s) => s !== "sent" && s !== "already_sent"),
      [],
    );

    // --- Postgres: the ledger, the appointments and the events, once each.
    const { rows: ledger } = await deps.sql.query<
      { template: string; message_id: string; status: string; attempts: number; task_id: string }
    >(
      `SELECT template, message_id, status, attempts, task_id FROM email_messages
        WHERE business_id = ANY($1::uuid[])`,
      [leadIds],
    );
    assert.equal(ledger.length, EMAILS);
    assert.deepEqual(Object.fromEntries(count(ledger, (r) => r.template)), {
      intro: LEADS,
      meeting_confirmation: BOOKINGS,
    });
    assert.deepEqual(ledger.filter((r) => r.status !== "sent"), []);
    // A ledger row is claimed more than once only by a task that was delivered more than once.
    const reclaimed = ledger.filter((r) => r.attempts > 1);
    assert.deepEqual(reclaimed.filter((r) => (byId.get(r.task_id)?.attempts ?? 0) < 2), []);
    const { rows: appointments } = await deps.sql.query<{ business_id: string; task_id: string }>(
      "SELECT business_id, task_id FROM appointments WHERE business_id = ANY($1::uuid[])",
      [leadIds],
    );
    assert.equal(appointments.length, BOOKINGS);
    assert.deepEqual(
      appointments.map((a) => a.business_id).sort(),
      leadIds.slice(0, BOOKINGS).sort(),
    );
    assert.deepEqual(appointments.map((a) => a.task_id).sort(), [...bookingIds].sort());
    const { rows: events } = await deps.sql.query<
      { event_type: string; template: string | null; n: number; leads: number }
    >(
      `SELECT event_type, event_data->>'template' AS template, count(*)::int AS n,
              count(DISTINCT lead_id)::int AS leads
         FROM lead_events
        WHERE lead_id = ANY($1::uuid[]) AND event_type IN ('email_sent', 'appointment_booked')
        GROUP BY 1, 2 ORDER BY 1, 2`,
      [leadIds],
    );
    assert.deepEqual(events, [
      { event_type: "appointment_booked", template: null, n: BOOKINGS, leads: BOOKINGS },
      { event_type: "email_sent", template: "intro", n: LEADS, leads: LEADS },
      {
        event_type: "email_sent",
        template: "meeting_confirmation",
        n: BOOKINGS,
        leads: BOOKINGS,
      },
    ]);
    const { rows: statuses } = await deps.sql.query<{ outreach_status: string; n: number }>(
      `SELECT outreach_status, count(*)::int AS n FROM businesses
        WHERE id = ANY($1::uuid[]) GROUP BY 1 ORDER BY 1`,
      [leadIds],
    );
    assert.deepEqual(statuses, [
      { outreach_status: "contacted", n: LEADS - BOOKINGS },
      { outreach_status: "meeting_scheduled", n: BOOKINGS },
    ]);

    // --- What was delivered: exactly the ledger's messages; invites on the confirmations.
    const deliveries = await outbox.deliveries();
    const distinct = new Map(deliveries.map((d) => [d.messageId, d]));
    assert.deepEqual(
      [...distinct.keys()].sort(),
      ledger.map((r) => r.message_id).sort(),
      "every delivery is one of the ledger's messages, and every ledger message was delivered",
    );
    const confirmationIdsInLedger = new Set(
      ledger.filter((r) => r.template === "meeting_confirmation").map((r) => r.message_id),
    );
    assert.deepEqual(
      [...distinct.values()].filter((d) => d.calendar !== confirmationIdsInLedger.has(d.messageId)),
      [],
      "exactly the confirmations carry a text/calendar part",
    );
    const duplicates = deliveries.length - distinct.size;
    if (options.maxDuplicates === "none") assert.equal(duplicates, 0);
    // A duplicate needs the kill between the server's acceptance and the ledger's record.
    else assert.ok(duplicates <= held.length, `${duplicates} duplicates > ${held.length} held`);

    console.log(JSON.stringify({
      provider: outbox.env.EMAIL_PROVIDER,
      tasks: TASKS,
      delivered_at_kill: deliveredAtKill,
      held_at_kill: held.length,
      held_by_type: Object.fromEntries(count(held, (id) => byId.get(id)!.type)),
      recovered,
      rerun_tasks: rerun.length,
      ledger_rows_claimed_again: reclaimed.length,
      max_attempts_seen: Math.max(...all.map((t) => t.attempts)),
      send_email_results: Object.fromEntries(emailResults),
      deliveries: deliveries.length,
      distinct_message_ids: distinct.size,
      duplicates,
      note: outbox.note(),
      seconds: Math.round(performance.now() - started) / 1000,
    }));
  } finally {
    await Promise.all(workers.map((w) => w.kill()));
    await deleteLeads(deps.sql, leadIds).catch((err) => console.error("cleanup failed", err));
    await redis.close();
  }
}

Deno.test({
  name: "a worker SIGKILLed mid-batch of send_email and book_appointment (file provider): " +
    "every task succeeds, each email, appointment and event exactly once",
  // The deps hold a Neon Pool, whose sockets close asynchronously after end().
  ...noSanitizers,
  async fn() {
    const outbox = await fileOutbox();
    try {
      await killMidBatch(outbox, { maxDuplicates: "none" });
    } finally {
      await outbox.close();
    }
  },
});

Deno.test({
  name: "the same with the smtp provider against a real SMTP server: every ledger message " +
    "delivered, duplicates only from the documented crash window, with the same Message-ID",
  // The Neon Pool as above; smtp-server's sockets also close after close() resolves.
  ...noSanitizers,
  async fn() {
    const outbox = await smtpOutbox();
    try {
      await killMidBatch(outbox, { maxDuplicates: "held" });
    } finally {
      await outbox.close();
    }
  },
});
