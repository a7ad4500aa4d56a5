import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createLead } from "../../shared/leads/repository.ts";
import { isPermanent } from "../../shared/queue/errors.ts";
import { ApplyLeadWritePayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import { derivedExternalId, leadWriteHandler, taskEventSource } from "./lead_write.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";

// The Neon Pool keeps WebSocket ops alive between queries (docs/reference/neon-local.md §5).
const opts = noSanitizers;

Deno.test({
  name: "apply_lead_write applies each queued write once, even when run again",
  ...opts,
}, async (t) => {
  await using stack = await useTestStack();
  const deps = stack.makeDeps();
  const run = runTag();
  const city = `Writeville-${run}`;
  const apply = leadWriteHandler();
  const ctx = (taskId: string, attempt = 1): TaskContext => ({
    deps,
    taskId,
    attempt,
    leaseToken: "t",
    signal: new AbortController().signal,
    log: deps.log,
  });
  const parse = (p: unknown) => ApplyLeadWritePayload.parse(p);
  const leadsNamed = async (name: string) =>
    (await deps.sql.query<{ id: string; source: string; external_id: string | null }>(
      "SELECT id, source, external_id FROM businesses WHERE city = $1 AND name = $2",
      [city, name],
    )).rows;
  const eventsOf = async (leadId: string) =>
    (await deps.sql.query<{ event_type: string; source: string }>(
      "SELECT event_type, source FROM lead_events WHERE lead_id = $1 ORDER BY time, id",
      [leadId],
    )).rows;
  try {
    await t.step(
      "a create without external_id gets task:<id>; a second run finds it and creates nothing",
      async () => {
        const taskId = crypto.randomUUID();
        const payload = parse({
          op: "create",
          input: { name: "Twice Bakery", city, source: "api", last_contacted: null },
          source: "api:sa:minerva",
        });
        const first = await apply(payload, ctx(taskId));
        assert.equal(first.status, "created");
        assert.equal(first.external_id, derivedExternalId(taskId));
        // A crash after COMMIT, before the ack: the queue delivers the task again.
        const second = await apply(payload, ctx(taskId, 2));
        assert.deepEqual(second, {
          status: "already_applied",
          lead_id: first.lead_id,
          external_id: `task:${taskId}`,
        });
        const rows = await leadsNamed("Twice Bakery");
        assert.deepEqual(rows, [{
          id: first.lead_id,
          source: "api",
          external_id: `task:${taskId}`,
        }]);
        assert.deepEqual(await eventsOf(first.lead_id), [
          { event_type: "lead_created", source: taskEventSource("api:sa:minerva", taskId) },
        ]);
      },
    );

    await t.step(
      "a client external_id is kept; another lead with it is dead-lettered",
      async () => {
        const taskId = crypto.randomUUID();
        const payload = parse({
          op: "create",
          input: { name: "Keyed Cafe", city, source: "places", external_id: `kc-${run}` },
          source: "api:u-op",
        });
        const created = await apply(payload, ctx(taskId));
        assert.equal(created.status, "created");
        assert.equal(created.external_id, `kc-${run}`);
        assert.equal((await apply(payload, ctx(taskId, 2))).status, "already_applied");

        // Another task (another request) with the same (source, external_id): a real duplicate.
        const err = await apply(payload, ctx(crypto.randomUUID())).then(
          () => assert.fail("expected a PermanentTaskError"),
          (e: Error) => e,
        );
        assert.ok(isPermanent(err));
        assert.match(err.message, /^The lead already exists: A lead from source "places"/);
        assert.equal((err.cause as Error).name, "LeadExistsError");
        assert.equal((await leadsNamed("Keyed Cafe")).length, 1);
      },
    );

    await t.step("an update is applied once; a rerun does not repeat its events", async () => {
      const lead = await createLead(deps.sql, { name: "Patch Parlor", city, source: "test" }, "t");
      const taskId = crypto.randomUUID();
      const payload = parse({
        op: "update",
        lead_id: lead.id,
        patch: {
          outreach_status: "contacted",
          lead_score: 55,
          last_contacted: "2025-05-01T09:00:00Z",
        },
        source: "api:u-op",
      });
      assert.deepEqual(await apply(payload, ctx(taskId)), { status: "updated", lead_id: lead.id });
      assert.deepEqual(await apply(payload, ctx(taskId, 2)), {
        status: "already_applied",
        lead_id: lead.id,
      });
      const { rows } = await deps.sql.query(
        "SELECT outreach_status, lead_score, last_contacted FROM businesses WHERE id = $1",
        [lead.id],
      );
      assert.equal(rows[0].outreach_status, "contacted");
      assert.equal(rows[0].lead_score, 55);
      assert.equal(rows[0].last_contacted.toISOString(), "2025-05-01T09:00:00.000Z");
      const source = taskEventSource("api:u-op", taskId);
      assert.deepEqual(await eventsOf(lead.id), [
        { event_type: "lead_created", source: "t" },
        { event_type: "status_changed", source },
        { event_type: "lead_updated", source },
      ]);
    });

    await t.step(
      "illegal transitions and unknown leads are permanent, with the reason",
      async () => {
        const lead = await createLead(deps.sql, { name: "Stuck Shop", city, source: "test" }, "t");
        const illegal = parse({
          op: "update",
          lead_id: lead.id,
          patch: { outreach_status: "client" },
          source: "api:u-op",
        });
        await assert.rejects(apply(illegal, ctx(crypto.randomUUID())), (err: Error) => {
          assert.ok(isPermanent(err));
          assert.match(err.message, /^Cannot move lead from "new" to "client"/);
          return true;
        });
        const ghost = crypto.randomUUID();
        await assert.rejects(
          apply(parse({ ...illegal, lead_id: ghost }), ctx(crypto.randomUUID())),
          (err: Error) => {
            assert.ok(isPermanent(err));
            assert.match(err.message, new RegExp(`^No such lead: No lead has id "${ghost}"`));
            return true;
          },
        );
      },
    );

    await t.step("the catalog refuses payloads the API would refuse", () => {
      for (
        const bad of [
          { op: "create", input: { name: " ", source: "api" }, source: "api:x" },
          { op: "create", input: { name: "a\u0000b", source: "api" }, source: "api:x" },
          { op: "update", lead_id: crypto.randomUUID(), patch: {}, source: "api:x" },
          { op: "update", lead_id: "nope", patch: { name: "x" }, source: "api:x" },
          { op: "update", lead_id: crypto.randomUUID(), patch: { id: "x" }, source: "api:x" },
          { op: "delete", lead_id: crypto.randomUUID(), source: "api:x" },
        ]
      ) {
        assert.equal(ApplyLeadWritePayload.safeParse(bad).success, false, JSON.stringify(bad));
      }
    });
  } finally {
    await deps.sql.query(
      `WITH gone AS (DELETE FROM businesses WHERE city = $1 RETURNING id)
       DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
      [city],
    ).catch(() => {});
  }
});
