/**
 * The live feed area: the WebSocket feed's history, socket and subscription
 * limits (edge/ws/, shared/ws/). The per-principal socket caps are in
 * perimeter.ts with the other abuse limits.
 *
 * @module
 */
import { defineArea, positiveInt } from "./spec.ts";

/** The WebSocket live feed; the names of the mapped values match the hub's options. */
export const liveFeed = defineArea(
  "Live feed",
  {
    WS_HISTORY_MAX_LEN: {
      description:
        "Live feed: messages kept per topic for reconnecting clients (edge and workers append)",
      default: "10000",
      schema: positiveInt,
    },
    WS_HISTORY_MAX_AGE_MS: {
      description:
        "Live feed: history older than this is trimmed; a `since` further back gets `recovered: false`",
      default: "120000",
      schema: positiveInt,
    },
    WS_PING_INTERVAL_MS: {
      description:
        "Live feed: a silent socket is pinged after this long and dropped after as long again",
      default: "25000",
      schema: positiveInt,
    },
    WS_REAUTH_GRACE_MS: {
      description:
        'Live feed: time to answer `{"type":"reauth"}` after the token expired, before the close with 4001',
      default: "30000",
      schema: positiveInt,
    },
    WS_SEND_QUEUE_MAX_BYTES: {
      description:
        "Live feed: per-socket send queue limit in bytes; beyond it the socket is closed with 4008 (slow consumer)",
      default: "1048576",
      schema: positiveInt,
    },
    WS_SEND_QUEUE_MAX_MESSAGES: {
      description: "Live feed: per-socket send queue limit in messages (4008 beyond it)",
      default: "1000",
      schema: positiveInt,
    },
    WS_SEND_HIGH_WATER_BYTES: {
      description:
        "Live feed: frames go straight to a socket while its runtime buffer holds less than this",
      default: "65536",
      schema: positiveInt,
    },
    WS_MAX_FRAME_BYTES: {
      description: "Live feed: largest client frame; larger ones get an `error` frame",
      default: "16384",
      schema: positiveInt,
    },
    WS_MAX_VIOLATIONS: {
      description: "Live feed: protocol violations of one socket before the close with 1008",
      default: "10",
      schema: positiveInt,
    },
    WS_MAX_KEYS_PER_TOPIC: {
      description: "Live feed: keyed subscriptions (`tasks:<id>`) per topic per socket",
      default: "100",
      schema: positiveInt,
    },
    WS_CLIENT_TTL_MS: {
      description:
        "Live feed: lifetime of a client's registry entry (GET /v1/ws/clients) unless refreshed",
      default: "300000",
      schema: positiveInt,
    },
    WS_REGISTRY_REFRESH_MS: {
      description:
        "Live feed: how often an edge refreshes its clients' registry entries; less than `WS_CLIENT_TTL_MS`",
      default: "60000",
      schema: positiveInt,
    },
    WS_HEARTBEAT_MS: {
      description:
        "Live feed: period of each edge's subscription check (a silent subscription is reopened and its gap filled)",
      default: "1000",
      schema: positiveInt,
    },
    WS_BUS_TIMEOUT_MS: {
      description: "Live feed: longest wait for a Redis call of the feed's subscription",
      default: "2000",
      schema: positiveInt,
    },
    WS_LEAD_EVENTS_POLL_MS: {
      description:
        "Live feed: how often the leader edge publishes newly committed lead events on `leads`",
      default: "100",
      schema: positiveInt,
    },
  },
  [],
  (v) => ({
    /** The WebSocket live feed (edge/ws/, shared/ws/); names match the hub's options. */
    liveFeed: {
      historyMaxLen: v.WS_HISTORY_MAX_LEN,
      historyMaxAgeMs: v.WS_HISTORY_MAX_AGE_MS,
      pingIntervalMs: v.WS_PING_INTERVAL_MS,
      reauthGraceMs: v.WS_REAUTH_GRACE_MS,
      sendQueueMaxBytes: v.WS_SEND_QUEUE_MAX_BYTES,
      sendQueueMaxMessages: v.WS_SEND_QUEUE_MAX_MESSAGES,
      sendHighWaterBytes: v.WS_SEND_HIGH_WATER_BYTES,
      maxFrameBytes: v.WS_MAX_FRAME_BYTES,
      maxViolations: v.WS_MAX_VIOLATIONS,
      maxKeysPerTopic: v.WS_MAX_KEYS_PER_TOPIC,
      clientTtlMs: v.WS_CLIENT_TTL_MS,
      registryRefreshMs: v.WS_REGISTRY_REFRESH_MS,
      heartbeatMs: v.WS_HEARTBEAT_MS,
      busTimeoutMs: v.WS_BUS_TIMEOUT_MS,
      leadEventsPollMs: v.WS_LEAD_EVENTS_POLL_MS,
    },
  }),
);
