/**
 * Builds the queue client from the process configuration.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Config } from "../config.ts";
import { TASK_CATALOG, type TaskCatalog } from "../tasks/catalog.ts";
import { createQueue, type TaskQueue } from "./queue.ts";

/** The platform queue with the configured limits. */
export function queueFromConfig(
  redis: Redis,
  config: Config,
  catalog: TaskCatalog = TASK_CATALOG,
): TaskQueue {
  return createQueue(redis, catalog, config.queue);
}
