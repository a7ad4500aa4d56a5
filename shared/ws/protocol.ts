/**
 * The live-feed wire protocol: JSON text frames, one object per frame, with
 * a `type`. The zod schemas below are the definition; {@linkcode protocolJsonSchema}
 * turns them into the JSON Schema served at `GET /v1/ws/schema`.
 *
 * Client → server: `subscribe {topics, since?, types?}`, `unsubscribe {topics}`,
 * `ping {id?}`, `reauth {token}`.
 * Server → client: `welcome`, `subscribed {topic, recovered, offset}`,
 * `unsubscribed {topic}`, `message {topic, key?, offset, ts, data}`,
 * `pong {id?}`, `reauth` (a fresh token is due), `reauthed {expires_at}`,
 * `error {code, message, topic?}`.
 *
 * @module
 */
import { z } from "zod";
import { OFFSET, TOPICS } from "./topics.ts";
import { FEED_LEAD_EVENT_TYPES, MAX_FILTER_TYPES } from "./lead_event_types.ts";

/** Topics one frame may name. */
export const MAX_TOPICS_PER_FRAME = 32;

const Offset = z.string().regex(OFFSET).describe(
  "A message offset (its history stream id, `<ms>-<seq>`); offsets of one topic only grow",
);
const TopicName = z.string().max(200).describe(
  `A topic (${TOPICS.join(", ")}) or \`<topic>:<key>\` for one key of it, e.g. \`tasks:<task id>\``,
);
const Topics = z.array(TopicName).min(1).max(MAX_TOPICS_PER_FRAME);

const Subscribe = z.object({
  type: z.literal("subscribe"),
  topics: Topics,
  since: z.union([Offset, z.record(z.string(), Offset)]).optional().describe(
    "Replay what was missed: the last offset seen, for every listed topic, or per topic " +
      '(`{"tasks": "…"}`). Without it, only new messages are sent.',
  ),
  types: z.array(z.string().max(64)).min(1).max(MAX_FILTER_TYPES).optional().describe(
    "Only lead events of these types on this socket's `leads` subscriptions (the frame must " +
      "name one), replayed history included; a frame naming `leads` without `types` receives " +
      `every type again. Known types: ${FEED_LEAD_EVENT_TYPES.join(", ")}; another is refused ` +
      "with `unknown-event-type` and nothing in the frame is subscribed.",
  ),
}).strict().meta({ title: "subscribe" });

const Unsubscribe = z.object({ type: z.literal("unsubscribe"), topics: Topics }).strict()
  .meta({ title: "unsubscribe" });

const Ping = z.object({ type: z.literal("ping"), id: z.string().max(64).optional() }).strict()
  .meta({ title: "ping" });

const Reauth = z.object({
  type: z.literal("reauth"),
  token: z.string().min(1).max(8192).describe("A fresh access token of the same principal"),
}).strict().meta({ title: "reauth (client)" });

/** Every frame a client may send. */
export const ClientFrame = z.discriminatedUnion("type", [Subscribe, Unsubscribe, Ping, Reauth])
  .meta({ title: "Client frame" });
/** A parsed client frame. */
export type ClientFrame = z.infer<typeof ClientFrame>;

/** Error codes of `error` frames. */
export const ERROR_CODES = [
  "bad-json",
  "bad-frame",
  "unknown-type",
  "frame-too-large",
  "binary-not-supported",
  "unknown-topic",
  "forbidden-topic",
  "unknown-event-type",
  "invalid-token",
  "unavailable",
] as const;
/** An `error` frame code. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Every frame the server sends (documentation; the hub builds them directly). */
export const ServerFrame = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("welcome"),
    client_id: z.string().describe("This connection's id (targets, the client registry)"),
    instance: z.string(),
    expires_at: z.iso.datetime().describe(
      "Token expiry, ISO 8601 UTC with milliseconds: a `reauth` is asked for then",
    ),
  }).meta({ title: "welcome" }),
  z.object({
    type: z.literal("subscribed"),
    topic: z.string(),
    recovered: z.boolean().describe(
      "true: every message after `since` follows (then live ones); false: no `since`, or " +
        "the gap is older than the history (reload state)",
    ),
    offset: Offset.describe("The offset the subscription starts after"),
  }).meta({ title: "subscribed" }),
  z.object({ type: z.literal("unsubscribed"), topic: z.string() }).meta({ title: "unsubscribed" }),
  z.object({
    type: z.literal("message"),
    topic: z.enum(TOPICS),
    key: z.string().optional().describe("The key inside the topic, e.g. the task id"),
    offset: Offset,
    ts: z.iso.datetime().describe("Publish time, ISO 8601 UTC with milliseconds"),
    data: z.unknown(),
  }).meta({ title: "message" }),
  z.object({ type: z.literal("pong"), id: z.string().optional() }).meta({ title: "pong" }),
  z.object({ type: z.literal("reauth") }).describe(
    "The token expired: send `reauth {token}` within the grace period or the socket closes " +
      "with 4001",
  ).meta({ title: "reauth (server)" }),
  z.object({ type: z.literal("reauthed"), expires_at: z.iso.datetime() }).meta({
    title: "reauthed",
  }),
  z.object({
    type: z.literal("error"),
    code: z.enum(ERROR_CODES),
    message: z.string(),
    topic: z.string().optional(),
  }).meta({ title: "error" }),
]).meta({ title: "Server frame" });

/** Close codes the server uses. */
export const CLOSE_CODES = {
  /** Server shutting down. */
  goingAway: 1001,
  /** Repeated protocol violations. */
  policyViolation: 1008,
  /** The token expired and no valid `reauth` came within the grace period. */
  tokenExpired: 4001,
  /** A `reauth` token named another principal. */
  principalChanged: 4003,
  /** The send queue overflowed: the client reads too slowly. */
  slowConsumer: 4008,
} as const;

/** The protocol as one JSON Schema document (2020-12). */
export function protocolJsonSchema(): Record<string, unknown> {
  const client = z.toJSONSchema(ClientFrame) as Record<string, unknown>;
  const server = z.toJSONSchema(ServerFrame) as Record<string, unknown>;
  delete client.$schema;
  delete server.$schema;
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: "Pleasant Cove live feed protocol (GET /v1/ws)",
    description: "JSON text frames. Close codes: " +
      Object.entries(CLOSE_CODES).map(([k, v]) => `${v} ${k}`).join(", "),
    $defs: { client, server },
    oneOf: [{ $ref: "#/$defs/client" }, { $ref: "#/$defs/server" }],
  };
}

/** A client frame that could not be used, as the `error` frame to answer with. */
export interface FrameProblem {
  code: ErrorCode;
  message: string;
}

const CLIENT_TYPES = new Set(["subscribe", "unsubscribe", "ping", "reauth"]);

/** Parses one text frame (already checked for size). */
export function parseClientFrame(text: string): ClientFrame | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { code: "bad-json", message: "The frame is not JSON" };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { code: "bad-frame", message: "A frame is a JSON object with a type" };
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== "string" || !CLIENT_TYPES.has(type)) {
    return {
      code: "unknown-type",
      message: `Unknown frame type ${JSON.stringify(type ?? null).slice(0, 40)}; ` +
        "expected subscribe, unsubscribe, ping or reauth",
    };
  }
  const parsed = ClientFrame.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    return { code: "bad-frame", message: `Invalid ${type} frame: ${where}${issue?.message}` };
  }
  return parsed.data;
}

/** True when `x` is a problem rather than a frame. */
export function isProblem(x: ClientFrame | FrameProblem): x is FrameProblem {
  return "code" in x;
}

/** The `message` frame text (built once per message, sent to every socket). */
export function messageFrame(
  m: { topic: string; key: string | null; offset: string; ts: number; data: string },
): string {
  const key = m.key === null ? "" : `,"key":${JSON.stringify(m.key)}`;
  // `ts` is epoch ms inside the feed (the history's stream ids); clients get
  // ISO 8601 like every other time of the API (docs/api.md "Time").
  const ts = new Date(m.ts).toISOString();
  return `{"type":"message","topic":"${m.topic}"${key},"offset":"${m.offset}","ts":"${ts}","data":${m.data}}`;
}
