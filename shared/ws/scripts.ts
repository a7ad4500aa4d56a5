/**
 * The live feed's Lua scripts (shared/redis/scripts/ws_*.lua), bound to one
 * Redis client. Each is one EVALSHA (EVAL on NOSCRIPT, so they survive a
 * Redis restart).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { bindScript, type LoadedScript } from "../redis/scripts.ts";
import publish from "../redis/scripts/ws_publish.lua" with { type: "text" };
import publishMany from "../redis/scripts/ws_publish_many.lua" with { type: "text" };
import readHistory from "../redis/scripts/ws_read_history.lua" with { type: "text" };
import touchClients from "../redis/scripts/ws_touch_clients.lua" with { type: "text" };
import removeClients from "../redis/scripts/ws_remove_clients.lua" with { type: "text" };
import listClients from "../redis/scripts/ws_list_clients.lua" with { type: "text" };

/** The live feed's scripts. */
export interface FeedScripts {
  publish: LoadedScript;
  publishMany: LoadedScript;
  readHistory: LoadedScript;
  touchClients: LoadedScript;
  removeClients: LoadedScript;
  listClients: LoadedScript;
}

/** Binds every live-feed script to `redis`. */
export function bindFeedScripts(redis: Redis): FeedScripts {
  return {
    publish: bindScript(redis, publish, { name: "ws_publish" }),
    publishMany: bindScript(redis, publishMany, { name: "ws_publishMany" }),
    readHistory: bindScript(redis, readHistory, { name: "ws_readHistory" }),
    touchClients: bindScript(redis, touchClients, { name: "ws_touchClients" }),
    removeClients: bindScript(redis, removeClients, { name: "ws_removeClients" }),
    listClients: bindScript(redis, listClients, { name: "ws_listClients" }),
  };
}
