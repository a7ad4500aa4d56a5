/**
 * A Redis client whose subscription streams a test can silence (a stream
 * that stays open but delivers nothing, as after a Redis restart behind the
 * bridge), for the live-feed suites.
 *
 * @module
 */
import type { Redis } from "@upstash/redis";

/** A Redis client whose current subscription streams can be silenced. */
export interface MutableRedis {
  redis: Redis;
  /** Streams opened so far. */
  readonly subscriptions: number;
  /** Every stream opened so far stops delivering (new ones work). */
  silenceStreams(): void;
}

/** Wraps `redis`: `subscribe()` returns subscribers whose events a test can cut off. */
export function mutableSubscriptions(redis: Redis): MutableRedis {
  let subscriptions = 0;
  const silenced = new Set<number>();
  const proxy = new Proxy(redis, {
    get(target, prop, receiver) {
      if (prop !== "subscribe") return Reflect.get(target, prop, receiver);
      return (channel: string) => {
        const n = ++subscriptions;
        const sub = target.subscribe(channel);
        return new Proxy(sub, {
          get(s, p, r) {
            if (p !== "on") {
              const v = Reflect.get(s, p, r);
              return typeof v === "function" ? v.bind(s) : v;
            }
            return (event: string, listener: (...args: unknown[]) => void) =>
              s.on(event as "message", (...args: unknown[]) => {
                if (!silenced.has(n)) listener(...args);
              });
          },
        });
      };
    },
  });
  return {
    redis: proxy,
    get subscriptions() {
      return subscriptions;
    },
    silenceStreams() {
      for (let i = 1; i <= subscriptions; i++) silenced.add(i);
    },
  };
}
