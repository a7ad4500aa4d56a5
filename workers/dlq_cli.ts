/**
 * `deno task dlq <command>`: operate the dead-letter queue.
 *
 *   list   [--type T] [--limit N] [--offset N]   newest first
 *   show   <id>
 *   replay <id>… | --type T [--rate N]            keeps ids and idempotency keys, resets attempts
 *   purge  <id>… | --type T | --all
 *
 * Output is one JSON object per line on stdout (for scripts); errors are one
 * readable line on stderr with exit code 2.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createRedis } from "../shared/deps.ts";
import { loadConfigOrExit } from "../shared/lifecycle.ts";
import { readToolEnvironment } from "../shared/config/dev_env_file.ts";
import {
  listDead,
  purgeAllDead,
  purgeDead,
  replayDead,
  replayDeadByType,
} from "../shared/queue/dlq.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import type { TaskQueue } from "../shared/queue/queue.ts";

/** A usage error: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

const USAGE = "usage: deno task dlq list [--type T] [--limit N] [--offset N] | show <id> | " +
  "replay <id>… | replay --type T [--rate N] | purge <id>… | purge --type T | purge --all";

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new UsageError(`--${name} must be a non-negative integer, got "${value}"`);
  }
  return n;
}

/** Runs one CLI command against `queue`, writing JSON lines with `print`. */
export async function runDlqCommand(
  queue: TaskQueue,
  argv: string[],
  print: (obj: unknown) => void,
): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        type: { type: "string" },
        limit: { type: "string" },
        offset: { type: "string" },
        rate: { type: "string" },
        all: { type: "boolean" },
      },
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; ${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [command, ...ids] = positionals;
  switch (command) {
    case "list": {
      const page = await listDead(queue, {
        type: values.type,
        limit: positiveInt("limit", values.limit, 50),
        offset: positiveInt("offset", values.offset, 0),
      });
      for (const t of page.tasks) {
        print({
          id: t.id,
          type: t.type,
          failed_at: t.failedAt ? new Date(t.failedAt).toISOString() : null,
          attempts: t.attempts,
          dlq_reason: t.dlqReason,
          error: t.lastError,
        });
      }
      print({ total: page.total, next_offset: page.nextOffset });
      return;
    }
    case "show": {
      if (ids.length !== 1) throw new UsageError(`show takes exactly one task id; ${USAGE}`);
      const task = await queue.getTask(ids[0]!);
      if (!task) throw new UsageError(`No task with id "${ids[0]}"`);
      print(task);
      return;
    }
    case "replay": {
      if (values.type && ids.length === 0) {
        const count = await replayDeadByType(queue, values.type, {
          perSecond: positiveInt("rate", values.rate, 100) || 100,
        });
        print({ replayed: count, type: values.type });
        return;
      }
      if (ids.length === 0 || values.type) {
        throw new UsageError(`replay takes task ids or --type; ${USAGE}`);
      }
      const replayed = await replayDead(queue, ids);
      print({
        replayed: replayed.length,
        ids: replayed,
        not_in_dlq: ids.filter((i) => !replayed.includes(i)),
      });
      return;
    }
    case "purge": {
      if (ids.length > 0 && !values.type && !values.all) {
        const purged = await purgeDead(queue, ids);
        print({
          purged: purged.length,
          ids: purged,
          not_in_dlq: ids.filter((i) => !purged.includes(i)),
        });
        return;
      }
      if (ids.length === 0 && (values.type !== undefined) !== (values.all === true)) {
        print({ purged: await purgeAllDead(queue, values.type), type: values.type ?? null });
        return;
      }
      throw new UsageError(`purge takes task ids, --type T or --all; ${USAGE}`);
    }
    default:
      throw new UsageError(command ? `Unknown command "${command}"; ${USAGE}` : USAGE);
  }
}

if (import.meta.main) {
  // The running `deno task dev` stack when no target is set (shared/config/dev_env_file.ts).
  const config = loadConfigOrExit(readToolEnvironment().env);
  const queue = queueFromConfig(createRedis(config.redis), config);
  try {
    await runDlqCommand(queue, Deno.args, (obj) => console.log(JSON.stringify(obj)));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(err.message);
      Deno.exit(2);
    }
    console.error(`dlq: ${err instanceof Error ? err.message : String(err)}`);
    Deno.exit(1);
  }
}
