/**
 * A queued lead write (`apply_lead_write`) while the pooled Postgres
 * connection silently stops answering (the fault proxy's blackhole in front
 * of dev/neon_proxy.ts): like the direct write, it fails at
 * `DB_WRITE_TIMEOUT_MS` as a database failure (retried, not dead-lettered)
 * instead of holding the task until its timeout; the retry after the fault
 * applies it once.
 */
import assert from "node:assert/strict";
import { silentPostgres } from "../../testing/silent_postgres.ts";
import { useTestStack } from "../../testing/stack.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { TransactionDeadlineError } from "../../shared/leads/transaction.ts";
import { isPermanent } from "../../shared/queue/errors.ts";
import { ApplyLeadWritePayload } from "../../shared/tasks/catalog.ts";
import type { TaskContext } from "../runner.ts";
import { leadWriteHandler } from "./lead_write.ts";

// The Neon Pool keeps WebSocket ops alive between queries (docs/reference/neon-local.md §5).
const opts = noSanitizers;

Deno.test({
  name:
    "apply_lead_write on a silent database connection fails at DB_WRITE_TIMEOUT_MS; the retry applies once",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const silent = await silentPostgres(stack);
    await using proxy = silent.proxy;
    const deps = stack.makeDeps(silent.env);
    const direct = stack.makeDeps();
    const city = `Silentqueue-${crypto.randomUUID().slice(0, 8)}`;
    const apply = leadWriteHandler();
    const ctx = (taskId: string, attempt: number): TaskContext => ({
      deps,
      taskId,
      attempt,
      leaseToken: "t",
      signal: new AbortController().signal,
      log: deps.log,
    });
    const create = ApplyLeadWritePayload.parse({
      op: "create",
      input: { name: "Silent Queue", city, source: "api", last_contacted: null },
      source: "api:sa:minerva",
    });
    const taskId = crypto.randomUUID();
    try {
      await deps.sql.query("SELECT 1");
      const existing = await apply(create, ctx(crypto.randomUUID(), 1));
      const update = ApplyLeadWritePayload.parse({
        op: "update",
        lead_id: existing.lead_id,
        patch: { rating: 4.5 },
        source: "api:sa:minerva",
      });

      for (const payload of [create, update]) {
        // A pooled connection that worked, then goes silent (a new one would meet the pool's
        // connect timeout instead, which is not what this tests).
        proxy.setFault({ kind: "pass" });
        await deps.sql.query("SELECT 1");
        proxy.setFault({ kind: "blackhole" });
        const began = Date.now();
        const err = await apply(payload, ctx(taskId, 1)).then(
          () => assert.fail(`the ${payload.op} succeeded on a silent connection`),
          (e: unknown) => e,
        );
        const took = Date.now() - began;
        assert.ok(err instanceof TransactionDeadlineError, `${payload.op}: ${err}`);
        assert.equal(isPermanent(err), false, "retried, not dead-lettered");
        assert.ok(took < 3_000, `${payload.op} failed at its deadline, took ${took} ms`);
      }

      proxy.setFault({ kind: "pass" });
      const created = await apply(create, ctx(taskId, 2));
      assert.equal(created.status, "created");
      const again = await apply(create, ctx(taskId, 3));
      assert.equal(again.status, "already_applied");
      const { rows } = await direct.sql.query(
        "SELECT id FROM businesses WHERE city = $1 AND name = 'Silent Queue'",
        [city],
      );
      assert.equal(rows.length, 2, "the fixture lead and the queued create, once");
    } finally {
      await direct.sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [city],
      );
      await direct.sql.query("DELETE FROM businesses WHERE city = $1", [city]);
    }
  },
});
