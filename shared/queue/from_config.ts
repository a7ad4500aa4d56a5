/**
 * Builds the queue client from the process configuration.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { Config } from "../config/mod.ts";
import { TASK_CATALOG, type TaskCatalog } from "../tasks/catalog.ts";
import { upstreamTaskCatalog } from "../upstreams/queued_request.ts";
import { createQueue, type TaskQueue } from "./queue.ts";
import type { TcpScriptTransport } from "../redis/tcp_scripts.ts";

/**
 * The platform's task types for this configuration: the static catalog plus
 * one `forward_request.<upstream>` type per configured upstream.
 */
export function platformCatalog(config: Pick<Config, "upstreams">): TaskCatalog {
  return { ...TASK_CATALOG, ...upstreamTaskCatalog(config.upstreams) };
}

/** The platform queue with the configured limits; `scripts`: see {@linkcode createQueue}. */
export function queueFromConfig(
  redis: Redis,
  config: Config,
  catalog: TaskCatalog = platformCatalog(config),
  scripts?: TcpScriptTransport,
): TaskQueue {
  return createQueue(redis, catalog, config.queue, scripts);
}
