/**
 * Which live-feed client is connected to which edge instance, in Redis:
 * client id → `{instance, user, connected_at}`, each entry with a TTL
 * (default 5 minutes) that the owning instance's heartbeat keeps extending.
 * A socket that closes unregisters at once; the clients of an instance that
 * died vanish after one TTL. Every change is one script call
 * (ws_touch_clients.lua, ws_remove_clients.lua, ws_list_clients.lua).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import { type LiveFeedKeys, liveFeedKeys } from "../redis/keys.ts";
import { bindFeedScripts, type FeedScripts } from "./scripts.ts";

/** What the registry stores about one client. */
export interface ClientInfo {
  instance: string;
  /** The principal's `sub`. */
  user: string;
  connected_at: number;
}

/** A registered client as listed. */
export interface RegisteredClient extends ClientInfo {
  id: string;
  /** When the entry expires unless refreshed, epoch ms. */
  expires_at: number;
}

/** Where a page of {@linkcode ClientRegistry.list} starts: after this client. */
export interface ClientListCursor {
  expires_at: number;
  id: string;
}

/** A page of {@linkcode ClientRegistry.list}. */
export interface ClientListPage {
  total: number;
  clients: RegisteredClient[];
  /** The last client of this page when another page follows, else null. */
  next: ClientListCursor | null;
}

/** Options for {@linkcode createClientRegistry}. */
export interface ClientRegistryOptions {
  redis: Redis;
  /** Redis key namespace. @default "pc" */
  namespace?: string;
  /** Lifetime of an entry without refresh, ms. @default 300_000 */
  ttlMs?: number;
}

/** The client registry. */
export interface ClientRegistry {
  readonly ttlMs: number;
  /** Registers clients (or refreshes them with `info` null: an entry already gone stays gone). */
  touch(clients: readonly { id: string; info: ClientInfo | null }[]): Promise<void>;
  remove(ids: readonly string[]): Promise<void>;
  /**
   * One page of live clients ordered by (expiry, id) — `after` is the last
   * client of the previous page — the total count, and whether more follow.
   */
  list(limit?: number, after?: ClientListCursor): Promise<ClientListPage>;
}

/** Creates the registry; validates options now. */
export function createClientRegistry(options: ClientRegistryOptions): ClientRegistry {
  if (!options?.redis) throw new TypeError('Client registry option "redis" is required');
  const ttlMs = options.ttlMs ?? 300_000;
  if (!Number.isInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`Client registry option "ttlMs" must be a positive integer: got ${ttlMs}`);
  }
  const keys: LiveFeedKeys = liveFeedKeys(options.namespace ?? "pc");
  const scripts: FeedScripts = bindFeedScripts(options.redis);
  const pair = [keys.clientExpiry, keys.clientInfo];
  // Bounds one script's work; a large instance refreshes in several calls.
  const BATCH = 500;

  return {
    ttlMs,
    async touch(clients) {
      for (let i = 0; i < clients.length || i === 0; i += BATCH) {
        const batch = clients.slice(i, i + BATCH)
          .map((c) => [c.id, c.info === null ? "" : JSON.stringify(c.info)]);
        await scripts.touchClients.run(pair, [ttlMs, JSON.stringify(batch)]);
      }
    },
    async remove(ids) {
      for (let i = 0; i < ids.length; i += BATCH) {
        await scripts.removeClients.run(pair, [JSON.stringify(ids.slice(i, i + BATCH))]);
      }
    },
    async list(limit = 1000, after) {
      const out = await scripts.listClients.run<unknown[]>(pair, [
        limit,
        after ? after.expires_at : "",
        after ? after.id : "",
      ]);
      const clients: RegisteredClient[] = [];
      for (let i = 2; i + 2 < out.length; i += 3) {
        let info: Partial<ClientInfo> = {};
        try {
          info = JSON.parse(String(out[i + 2]));
        } catch {
          // a foreign or damaged entry: listed with what is known
        }
        clients.push({
          id: String(out[i]),
          instance: String(info.instance ?? ""),
          user: String(info.user ?? ""),
          connected_at: Number(info.connected_at ?? 0),
          expires_at: Number(out[i + 1]),
        });
      }
      const last = clients.at(-1);
      const next = Number(out[1]) === 1 && last
        ? { expires_at: last.expires_at, id: last.id }
        : null;
      return { total: Number(out[0]), clients, next };
    },
  };
}
