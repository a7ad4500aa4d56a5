import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { claim, fail } from "../shared/queue/leases.ts";
import { testQueue } from "../testing/queue.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";
import { runDlqCommand, UsageError } from "./dlq_cli.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const opts = noSanitizers; // deps hold a Neon Pool

async function kill(q: TaskQueue, type: string, payload: unknown): Promise<string> {
  const { id } = await q.enqueue(type, payload);
  const { tasks } = await claim(q.ctx, { max: 1, leaseMs: 30_000, workerId: "t" });
  await fail(q.ctx, [{
    id,
    leaseToken: tasks[0]!.leaseToken,
    error: "Error: x",
    permanent: true,
    backoffMs: 0,
  }]);
  return id;
}

async function run(q: TaskQueue, ...argv: string[]): Promise<Record<string, unknown>[]> {
  const out: Record<string, unknown>[] = [];
  await runDlqCommand(q, argv, (o) => out.push(JSON.parse(JSON.stringify(o))));
  return out;
}

Deno.test({
  name: "deno task dlq list | show | replay | purge",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const q = testQueue(stack.makeDeps().redis);
    const a = await kill(q, "echo", { n: 1 });
    const b = await kill(q, "loose", { data: 1 });
    const c = await kill(q, "echo", { n: 2 });

    const listed = await run(q, "list", "--type", "echo");
    assert.deepEqual(listed.map((l) => l.id), [c, a, undefined]);
    assert.equal(listed[0]!.dlq_reason, "Permanent error: Error: x");
    assert.deepEqual(listed.at(-1), { total: 2, next_offset: null });

    assert.equal((await run(q, "show", b))[0]!.status, "dead");
    assert.deepEqual(await run(q, "replay", a, "nope"), [{
      replayed: 1,
      ids: [a],
      not_in_dlq: ["nope"],
    }]);
    assert.equal((await q.getTask(a))?.status, "pending");
    assert.deepEqual(await run(q, "replay", "--type", "echo", "--rate", "1000"), [{
      replayed: 1,
      type: "echo",
    }]);
    assert.deepEqual(await run(q, "purge", "--all"), [{ purged: 1, type: null }]);
    assert.equal(await q.getTask(b), null);

    await assert.rejects(
      run(q, "frobnicate"),
      (e: Error) => e instanceof UsageError && /Unknown command "frobnicate"/.test(e.message),
    );
    await assert.rejects(
      run(q, "list", "--limit", "x"),
      /--limit must be a non-negative integer, got "x"/,
    );
    await assert.rejects(run(q, "purge"), /purge takes task ids, --type T or --all/);
    await assert.rejects(run(q, "show", "missing"), /No task with id "missing"/);
    await assert.rejects(run(q, "list", "--bogus"), UsageError);
  },
});
