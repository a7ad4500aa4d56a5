/**
 * Feeds the `breakers` and `dlq` topics from signals the platform already
 * has, so operators see them live:
 *
 * - Breaker transitions: every instance's registry observes every shared
 *   transition (its own and, through the breaker channel, the others'), so
 *   every instance publishes it, with a dedupe id of (breaker, epoch, state):
 *   the publish script lets exactly one through.
 * - Dead-letter alerts: the queue's scripts PUBLISH them on the queue's DLQ
 *   channel (pub/sub only, no history). Each edge follows that channel with a
 *   {@linkcode WatchedChannel} (a second stream per instance, beside the
 *   feed's) and republishes each alert into the feed, deduplicated by the
 *   alert's content hash. Alerts published while no relay's stream is alive
 *   (Redis restarting) are not recovered: the DLQ itself still holds the
 *   entries (GET /v1/dlq).
 *
 * @module
 */
import type { Redis } from "@upstash/redis";
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { BreakerTransition } from "../../shared/breakers/types.ts";
import { sha256Hex } from "../../shared/hash.ts";
import type { Logger } from "../../shared/log.ts";
import { queueKeys } from "../../shared/redis/keys.ts";
import { WatchedChannel } from "../../shared/ws/watched_channel.ts";
import type { LiveHub } from "./hub.ts";

/** Something that runs until stopped. */
export interface Relay {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Publishes every shared breaker transition on the `breakers` topic (once across instances). */
export function relayBreakerTransitions(
  registry: Pick<BreakerRegistry, "events">,
  options: { hub: Pick<LiveHub, "publish">; log?: Logger },
): Relay {
  const onTransition: EventListener = (e) => {
    const t = (e as CustomEvent<BreakerTransition>).detail;
    // Local transitions happen while Redis is unreachable: nothing to publish to.
    if (t.source !== "redis") return;
    options.hub.publish("breakers", {
      name: t.name,
      from: t.from,
      to: t.to,
      reason: t.reason,
      by: t.by,
      epoch: t.epoch,
    }, { key: t.name, dedupeId: `${t.name}:${t.epoch}:${t.to}` }).catch((err) =>
      options.log?.warn("breaker transition not published to the live feed", { err })
    );
  };
  return {
    start() {
      registry.events.addEventListener("transition", onTransition);
      return Promise.resolve();
    },
    stop() {
      registry.events.removeEventListener("transition", onTransition);
      return Promise.resolve();
    },
  };
}

/** Options for {@linkcode relayDeadLetters}. */
export interface DeadLetterRelayOptions {
  redis: Redis;
  hub: Pick<LiveHub, "publish" | "instanceId">;
  /** The queue's Redis namespace. @default "pc" */
  namespace?: string;
  /** @default 1000 */
  heartbeatMs?: number;
  log?: Logger;
}

/** Republishes the queue's dead-letter alerts on the `dlq` topic (once across instances). */
export function relayDeadLetters(options: DeadLetterRelayOptions): Relay {
  const channel = queueKeys(options.namespace ?? "pc").dlqChannel;
  const watched = new WatchedChannel({
    redis: options.redis,
    channel,
    instanceId: `${options.hub.instanceId}-dlq`,
    name: "dead-letter relay",
    heartbeatMs: options.heartbeatMs,
    log: options.log,
    onMessage: (alert) => {
      if (alert === null || typeof alert !== "object") return;
      const text = JSON.stringify(alert);
      // A dead task's alert is keyed by its type: `dlq:<type>` follows one task type.
      const type = (alert as { type?: unknown }).type;
      const key = typeof type === "string" && /^[a-z0-9_]{1,64}$/.test(type) ? type : undefined;
      // The queue's scripts stamp `at` in epoch ms (Redis' clock); the feed
      // speaks ISO 8601 like every other time of the API (docs/api.md "Time").
      const at = (alert as { at?: unknown }).at;
      const data = typeof at === "number" ? { ...alert, at: new Date(at).toISOString() } : alert;
      void sha256Hex(`${channel}\n${text}`).then((digest) =>
        options.hub.publish("dlq", data, key ? { key, dedupeId: digest } : { dedupeId: digest })
      ).catch((err) =>
        options.log?.warn("dead-letter alert not published to the live feed", { err })
      );
    },
  });
  return { start: () => watched.start(), stop: () => watched.stop() };
}
