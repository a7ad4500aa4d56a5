/**
 * Mirrors the edge components' own plain-number counters (rate limiter,
 * live hub) into Prometheus metrics at scrape time, so the hot paths keep
 * incrementing a number and pay nothing for the exporter.
 *
 * @module
 */
import { type Metrics, mirrorCounter } from "../shared/metrics/metrics.ts";
import type { RateLimitMetrics } from "./rate_limit/rate_limit_metrics.ts";
import type { LiveHubMetrics } from "./ws/hub.ts";

/**
 * `rate_limit_decisions_total{outcome}`,
 * `rate_limit_policy_decisions_total{policy,outcome}` and
 * `rate_limit_lease_events_total{event}` from the gateway limiter's counters.
 */
export function observeRateLimiter(metrics: Metrics, counters: RateLimitMetrics): void {
  metrics.collectors.push(() => {
    const c = metrics.rateLimitDecisions;
    mirrorCounter(c, { outcome: "allowed" }, counters.allowed);
    mirrorCounter(c, { outcome: "limited" }, counters.limited);
    mirrorCounter(c, { outcome: "fail_open" }, counters.fallbackDecisions);
    mirrorCounter(c, { outcome: "unavailable" }, counters.unavailable);
    mirrorCounter(c, { outcome: "store_error" }, counters.storeErrors);
    const l = metrics.rateLimitLeases;
    mirrorCounter(l, { event: "granted" }, counters.leaseGrants);
    mirrorCounter(l, { event: "local_decision" }, counters.localDecisions);
    mirrorCounter(l, { event: "tokens_returned" }, counters.leaseTokensReturned);
    const p = metrics.rateLimitPolicyDecisions;
    for (const [policy, counts] of counters.byPolicy) {
      for (const [outcome, value] of Object.entries(counts)) {
        mirrorCounter(p, { policy, outcome }, value);
      }
    }
  });
}

/**
 * `ws_connections`, `ws_events_total{event}`,
 * `ws_upgrades_refused_total{code}` and `ws_messages_dropped_total{reason}`
 * from the hub's counters.
 */
export function observeLiveHub(metrics: Metrics, counters: LiveHubMetrics): void {
  metrics.collectors.push(() => {
    metrics.wsConnections.set(counters.connections);
    const c = metrics.wsEvents;
    mirrorCounter(c, { event: "accepted" }, counters.accepted);
    mirrorCounter(c, { event: "sent" }, counters.sent);
    mirrorCounter(c, { event: "slow_consumer_close" }, counters.slowConsumers);
    mirrorCounter(c, { event: "violation" }, counters.violations);
    mirrorCounter(c, { event: "expired_close" }, counters.expiredCloses);
    for (const [code, value] of Object.entries(counters.refused)) {
      mirrorCounter(metrics.wsRefusals, { code }, value);
    }
    for (const [reason, value] of Object.entries(counters.dropped)) {
      mirrorCounter(metrics.wsDropped, { reason }, value);
    }
  });
}
