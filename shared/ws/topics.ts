/**
 * Live-feed topics and who may subscribe to them.
 *
 * A subscription names a topic (`tasks`) or one key inside it (`tasks:<id>`,
 * the status changes of one task). Offsets and history belong to the topic:
 * `tasks:<id>` reads the `tasks` stream and keeps the entries with that key.
 *
 * @module
 */

/** The topics, each with its own history stream. */
export const TOPICS = ["tasks", "leads", "breakers", "dlq", "broadcast", "models"] as const;
/** A live-feed topic. */
export type Topic = (typeof TOPICS)[number];

/**
 * Who is subscribing: structurally the gateway's `Principal` (shared/ cannot
 * import from edge/).
 */
export interface Subscriber {
  kind: "user" | "service";
  sub: string;
  roles: readonly string[];
}

/**
 * Who may follow a topic: `any` authenticated principal; `{ services, roles }`,
 * the services NAMED there and users holding one of the roles (never "any
 * service": a service is whoever a key source vouches for, so each one is
 * reviewed here by name); or `{ reads }`, whoever the API's access policy lets
 * GET that path — the feed shows task and lead changes exactly to those who
 * could read the same tasks and leads over REST, so it never widens access.
 */
export type TopicRule =
  | "any"
  | { services: readonly `sa:${string}`[]; roles: readonly string[] }
  | { reads: string };

/** Operational topics (breaker transitions, dead letters): admins and the platform's own services. */
export const OPERATIONS_RULE: TopicRule = {
  services: ["sa:api-gateway", "sa:minerva"],
  roles: ["admin"],
};

/** The authorization rule of each topic. */
export const TOPIC_RULES: Readonly<Record<Topic, TopicRule>> = {
  tasks: { reads: "/v1/tasks/:id" },
  leads: { reads: "/v1/leads/:id" },
  broadcast: "any",
  // Breaker states are readable by every dashboard role (GET /v1/breakers,
  // the policy's "status" group), so are their transitions.
  breakers: { services: OPERATIONS_RULE.services, roles: ["admin", "operator", "viewer"] },
  dlq: OPERATIONS_RULE,
  // Lead-scoring deployments (shared/scoring/notify.ts): whoever may list the models.
  models: { reads: "/v1/models" },
};

/** A parsed subscription name. */
export interface TopicRef {
  topic: Topic;
  /** Only entries with this key (e.g. one task id); null for the whole topic. */
  key: string | null;
  /** The name as the client wrote it, e.g. `tasks:t1`. */
  name: string;
}

const KEY = /^[A-Za-z0-9._~-]{1,128}$/;

/** Parses `topic` or `topic:key`; null when the name is not a known topic. */
export function parseTopic(name: string): TopicRef | null {
  if (typeof name !== "string") return null;
  const colon = name.indexOf(":");
  const base = colon < 0 ? name : name.slice(0, colon);
  if (!(TOPICS as readonly string[]).includes(base)) return null;
  if (colon < 0) return { topic: base as Topic, key: null, name };
  const key = name.slice(colon + 1);
  return KEY.test(key) ? { topic: base as Topic, key, name } : null;
}

/**
 * True when `who` may subscribe to `topic`. `mayRead(path)` answers the
 * `{ reads }` rules (the edge's access policy for GET `path`); without it
 * they deny.
 */
export function maySubscribe(
  who: Subscriber,
  topic: Topic,
  mayRead: (path: string) => boolean = () => false,
): boolean {
  const rule = TOPIC_RULES[topic];
  if (rule === "any") return true;
  if ("reads" in rule) return mayRead(rule.reads);
  if (who.kind === "service") return (rule.services as readonly string[]).includes(who.sub);
  return who.roles.some((r) => rule.roles.includes(r));
}

/** True when `topic` is a live-feed topic. */
export function isTopic(name: string): name is Topic {
  return (TOPICS as readonly string[]).includes(name);
}

/** Offsets are Redis stream ids, `<ms>-<seq>`. */
export const OFFSET = /^\d{1,15}-\d{1,15}$/;

/** The number written in `s` from `from` to `to` (digits only: offsets are checked with OFFSET). */
function digits(s: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n = n * 10 + s.charCodeAt(i) - 48;
  return n;
}

/**
 * Compares two offsets: negative when a < b, 0 when equal, positive when a > b.
 * Runs for every message and socket of the fan-out, so it reads the digits in
 * place instead of slicing the parts into new strings.
 */
export function compareOffsets(a: string, b: string): number {
  if (a === b) return 0;
  const da = a.indexOf("-");
  const db = b.indexOf("-");
  const ma = digits(a, 0, da);
  const mb = digits(b, 0, db);
  if (ma !== mb) return ma - mb;
  return digits(a, da + 1, a.length) - digits(b, db + 1, b.length);
}
