/**
 * The live-feed routes.
 *
 * `GET /v1/ws` is mounted BEFORE the `/v1` gateway chain (its JSON-only and
 * Idempotency-Key stages do not apply to an upgrade) and authenticates on its
 * own, with the gateway's verifier, before upgrading: 401 without a valid
 * token, 403 when the policy or a requested topic forbids it, 426 for a plain
 * GET; only then is a socket opened. The token comes in
 * `Sec-WebSocket-Protocol: bearer, <jwt>` (browsers cannot set headers on a
 * WebSocket; `bearer` is echoed back), `Authorization: Bearer <jwt>`, or
 * `?access_token=<jwt>` (query strings end up in proxy logs and traces:
 * prefer the subprotocol). With the gateway's rate limiter, a failed
 * authentication is charged to the client IP's `anonymous` budget, as on
 * every /v1 route (429 once spent, so token guessing over WebSocket is
 * throttled too). Authenticated upgrades are not charged: a socket is
 * long-lived, and a limiter call per upgrade (a Redis round trip and its
 * garbage) raised the edge memory per idle connection in bench:ws by half
 * (docs/benchmarks.md, design measurements).
 *
 * `GET /v1/ws/schema`, `GET /v1/ws/clients` (admin) and
 * `POST /v1/ws/broadcast` (admin) are ordinary routes behind the chain.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context, MiddlewareHandler } from "hono";
import { decodeJwt } from "jose";
import type { Logger } from "../../shared/log.ts";
import { protocolJsonSchema } from "../../shared/ws/protocol.ts";
import { parseTopic } from "../../shared/ws/topics.ts";
import { checkTypeFilter } from "../../shared/ws/lead_event_types.ts";
import type { AppEnv } from "../app_env.ts";
import { InvalidTokenError } from "../auth/errors.ts";
import { ACCESS_POLICY, type Authorizer, compilePolicy } from "../auth/policy.ts";
import type { Principal } from "../auth/principal.ts";
import type { Verifier } from "../auth/verify.ts";
import { problem } from "../problem.ts";
import { limitFailedAuthentication } from "../gateway.ts";
import { problemResponses, ProblemSchema } from "../routes/schemas.ts";
import { decodePageCursor, encodePageCursor, pageQuery, pageSchema } from "../routes/list_page.ts";
import { validationHook } from "../validation.ts";
import type { LiveHub } from "./hub.ts";

/** Options for {@linkcode liveSocketRoute}. */
export interface LiveSocketRouteOptions {
  hub: LiveHub;
  /** The gateway's verifier (cached, same keys and checks as every /v1 route). */
  verifier: Pick<Verifier, "verify">;
  /** The access policy deciding `GET /v1/ws`. @default compilePolicy(ACCESS_POLICY) */
  decide?: Authorizer;
  /** Allowed `Origin` values; empty allows any (tokens, not cookies, carry identity). */
  origins?: readonly string[];
  /** The gateway's rate limiter, for failed authentications (see the module doc). */
  limiter?: MiddlewareHandler;
  log?: Logger;
}

const CHALLENGE = 'Bearer realm="pleasant-cove"';
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const JWT = /^[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]*$/;

/** The token of an upgrade request, from the subprotocol, the header or the query. */
export function upgradeToken(c: Context): string | null {
  const offered = c.req.header("Sec-WebSocket-Protocol");
  if (offered !== undefined) {
    const parts = offered.split(",").map((p) => p.trim());
    const at = parts.indexOf("bearer");
    if (at >= 0 && parts[at + 1] !== undefined && JWT.test(parts[at + 1]!)) return parts[at + 1]!;
  }
  const header = c.req.header("Authorization");
  if (header !== undefined) return BEARER.exec(header.trim())?.[1] ?? "";
  return c.req.query("access_token") ?? null;
}

/** `GET /v1/ws`: authenticate, authorise, then upgrade. */
export function liveSocketRoute(options: LiveSocketRouteOptions): OpenAPIHono<AppEnv> {
  if (!options?.hub || typeof options.verifier?.verify !== "function") {
    throw new TypeError("liveSocketRoute() requires options hub and verifier");
  }
  const { hub, verifier } = options;
  const decide = options.decide ?? compilePolicy(ACCESS_POLICY);
  const origins = new Set(options.origins ?? []);
  const app = new OpenAPIHono<AppEnv>();
  const limiter = options.limiter;

  const liveSocket: MiddlewareHandler<AppEnv> = async function liveSocket(c) {
    const log = c.get("log") ?? options.log;
    const token = upgradeToken(c);
    if (token === null) {
      log?.info("authentication failed", { reason: "missing-token" });
      return problem(c, {
        code: "missing-token",
        status: 401,
        title: "Authentication required",
        detail: "Send a token: Sec-WebSocket-Protocol: bearer, <jwt> (or ?access_token=<jwt>)",
      }, { "WWW-Authenticate": CHALLENGE });
    }
    let principal: Principal;
    try {
      if (token === "") throw new InvalidTokenError("malformed");
      principal = await verifier.verify(token);
    } catch (err) {
      if (!(err instanceof InvalidTokenError)) throw err;
      log?.[err.reason === "jwks-unavailable" ? "warn" : "info"]("authentication failed", {
        reason: err.reason,
        field: err.field,
      });
      return problem(c, { code: "invalid-token", status: 401, title: "Invalid token" }, {
        "WWW-Authenticate": `${CHALLENGE}, error="invalid_token"`,
      });
    }
    c.set("principal", principal);
    const forbidden = (detail: string) =>
      problem(c, { code: "forbidden", status: 403, title: "Forbidden", detail });
    const origin = c.req.header("Origin");
    if (origins.size > 0 && origin !== undefined && !origins.has(origin)) {
      log?.info("live feed origin refused", { origin });
      return forbidden("This origin may not open the live feed");
    }
    const decision = decide(principal, "GET", "/v1/ws");
    if (!decision.allowed) {
      log?.info("authorization denied", { method: "GET", path: "/v1/ws", group: decision.group });
      return forbidden("The caller is not allowed to do this");
    }
    const topics = (c.req.query("topics") ?? "").split(",").map((t) => t.trim()).filter(Boolean);
    for (const name of topics) {
      const ref = parseTopic(name);
      if (ref === null) {
        return problem(c, {
          code: "unknown-topic",
          status: 400,
          title: "Unknown topic",
          detail: `"${name.slice(0, 80)}" is not a live-feed topic`,
        });
      }
      if (!hub.mayFollow(principal, ref.topic)) {
        return forbidden(`The caller may not follow "${ref.topic}"`);
      }
    }
    const typesParam = c.req.query("types");
    const types = typesParam === undefined
      ? undefined
      : typesParam.split(",").map((t) => t.trim()).filter(Boolean);
    if (types !== undefined) {
      const refused = types.length === 0
        ? { code: "bad-frame", message: "types lists no event type" }
        : checkTypeFilter(types, topics);
      if (refused !== null) {
        return problem(c, {
          code: refused.code === "unknown-event-type" ? refused.code : "invalid-request",
          status: 400,
          title: refused.code === "unknown-event-type" ? "Unknown event type" : "Invalid request",
          detail: refused.message,
        });
      }
    }
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return problem(c, {
        code: "upgrade-required",
        status: 426,
        title: "Upgrade required",
        detail: "GET /v1/ws is a WebSocket endpoint",
      }, { Upgrade: "websocket", Connection: "Upgrade" });
    }
    // Caps before the upgrade: a refused attempt costs no socket and no Redis call.
    const refusal = hub.admit(principal.sub);
    if (refusal !== null) {
      log?.info("live feed upgrade refused", { reason: refusal.code });
      return problem(c, {
        code: refusal.code,
        status: refusal.status,
        title: refusal.status === 429 ? "Too many live-feed connections" : "Live feed full",
        detail: refusal.detail,
      }, { "Retry-After": String(refusal.retryAfterS) });
    }
    const expiresAt = (decodeJwt(token).exp ?? 0) * 1000;
    return await hub.accept(c, {
      principal,
      verifier,
      expiresAt,
      topics,
      ...(types === undefined ? {} : { types }),
    });
  };
  app.get(
    "/v1/ws",
    limiter === undefined ? liveSocket : limitFailedAuthentication(liveSocket, limiter),
  );
  // Described, not validated by zod: the handler above is a plain Hono route
  // (an upgrade is not a JSON request), so the description is registered by hand.
  app.openAPIRegistry.registerPath(liveSocketOperation);
  return app;
}

/** The OpenAPI description of `GET /v1/ws` (docs/live-feed.md has the protocol). */
const liveSocketOperation = {
  method: "get" as const,
  path: "/v1/ws",
  operationId: "connectLiveFeed",
  tags: ["live feed"],
  summary: "Open the live feed (WebSocket upgrade)",
  description: "A WebSocket (RFC 6455) carrying JSON text frames; `GET /v1/ws/schema` serves " +
    "the frames as a JSON Schema. After `welcome`, send " +
    '`{"type":"subscribe","topics":["leads"],"since":"<last offset>"}` to subscribe and to ' +
    "resume after a reconnect (`since`: one offset for every topic or an object of offsets " +
    "per topic; what was missed is replayed in order, then live messages follow). The token " +
    "is verified before the upgrade: send it as the subprotocol pair " +
    "`Sec-WebSocket-Protocol: bearer, <jwt>` (browsers cannot set headers on a WebSocket; " +
    "`bearer` is echoed back), as `Authorization: Bearer <jwt>`, or as `?access_token=`.",
  security: [{ bearer: [] }],
  request: {
    query: z.object({
      topics: z.string().optional().openapi({
        description: "Comma-separated topics to subscribe at once (`tasks`, `leads`, " +
          "`broadcast`, `dlq`, `breakers`, or `<topic>:<key>`); each must be allowed",
        example: "tasks,leads",
      }),
      types: z.string().optional().openapi({
        description: "Comma-separated lead event types: the `leads` subscriptions of `topics` " +
          "get only these (400 `unknown-event-type` for a type the platform does not know)",
        example: "email_replied,status_changed",
      }),
      access_token: z.string().optional().openapi({
        description: "The bearer token, when neither the subprotocol nor the header can carry " +
          "it (query strings reach proxy logs: prefer the subprotocol)",
      }),
    }),
    headers: z.object({
      upgrade: z.literal("websocket").openapi({ description: "Required: a plain GET is 426" }),
      "sec-websocket-protocol": z.string().optional().openapi({
        description: "`bearer, <jwt>`: the token, the way browsers can send it",
        example: "bearer, eyJhbGciOi…",
      }),
      origin: z.string().optional().openapi({
        description: "Checked against CORS_ORIGINS when that is set (403 otherwise)",
      }),
    }),
  },
  responses: {
    101: {
      description: "Switching Protocols: the socket is open; the first frame is `welcome`",
      headers: {
        "Sec-WebSocket-Protocol": {
          description: "`bearer` when the token came as the subprotocol",
          schema: { type: "string" as const },
        },
      },
    },
    ...problemResponses(400, 401, 403, 429),
    426: {
      description: "Upgrade required: not a WebSocket handshake",
      content: { "application/problem+json": { schema: ProblemSchema } },
    },
    503: {
      description: "The live feed is full on this instance (`Retry-After`)",
      content: { "application/problem+json": { schema: ProblemSchema } },
    },
  },
};

const ClientSchema = z.object({
  id: z.string(),
  instance: z.string(),
  user: z.string(),
  connected_at: z.string().openapi({ description: "ISO 8601 UTC with milliseconds" }),
  expires_at: z.string().openapi({
    description: "When the registry entry expires without a refresh (ISO 8601 UTC)",
  }),
}).openapi("LiveClient");

/** A client-list cursor: the last client's registry expiry (epoch ms) and id. */
const CLIENT_CURSOR = z.tuple([z.number().int().nonnegative(), z.string().min(1).max(200)]);

const clientsRoute = createRoute({
  method: "get",
  path: "/v1/ws/clients",
  operationId: "listLiveClients",
  tags: ["live feed"],
  summary: "Connected live-feed clients across every edge instance (admin)",
  security: [{ bearer: [] }],
  description:
    "Who: admins. The list envelope, in keyset pages ordered by registry expiry then id. The registry is live: a client that refreshes while you page moves later and may be listed again; one connected for the whole iteration is listed at least once.",
  request: {
    query: z.object(pageQuery({ defaultLimit: 1000, maxLimit: 10_000 })),
  },
  responses: {
    200: {
      description: "Registered clients (entries expire 5 minutes after their last refresh)",
      content: {
        "application/json": {
          schema: pageSchema(ClientSchema, "LiveClientPage", {
            total: "Live clients across every instance, on every page",
          }),
        },
      },
    },
    ...problemResponses(400, 401, 403, 429, 503),
  },
});

const schemaRoute = createRoute({
  method: "get",
  path: "/v1/ws/schema",
  operationId: "getLiveFeedSchema",
  tags: ["live feed"],
  summary: "JSON Schema of the live-feed protocol (GET /v1/ws frames)",
  security: [{ bearer: [] }],
  responses: {
    200: {
      description: "JSON Schema 2020-12 with the client and server frames",
      content: { "application/json": { schema: z.record(z.string(), z.unknown()) } },
    },
    ...problemResponses(401, 403, 429),
  },
});

const broadcastRoute = createRoute({
  method: "post",
  path: "/v1/ws/broadcast",
  operationId: "broadcastLiveMessage",
  tags: ["live feed"],
  summary: "Publish on the broadcast topic, to everyone or to one user or client (admin)",
  security: [{ bearer: [] }],
  request: {
    body: {
      required: true,
      content: {
        "application/json": {
          schema: z.object({
            data: z.unknown().refine((v) => v !== undefined, "data is required"),
            target: z.object({
              user: z.string().min(1).max(255).optional(),
              client: z.string().min(1).max(255).optional(),
            }).refine((t) => t.user !== undefined || t.client !== undefined, {
              message: "a target needs a user or a client",
            }).optional(),
          }),
        },
      },
    },
  },
  responses: {
    202: {
      description: "Published: in the history and on its way to every instance",
      content: {
        "application/json": {
          schema: z.object({ topic: z.literal("broadcast"), offset: z.string() }),
        },
      },
    },
    ...problemResponses(400, 401, 403, 413, 415, 429, 503),
  },
});

/** `GET /v1/ws/clients`, `GET /v1/ws/schema`, `POST /v1/ws/broadcast`. */
export function liveRoutes(hub: LiveHub): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const schema = protocolJsonSchema();
  app.openapi(clientsRoute, async (c) => {
    const { limit, cursor } = c.req.valid("query");
    const after = cursor === undefined
      ? undefined
      : (([expires_at, id]) => ({ expires_at, id }))(decodePageCursor(cursor, CLIENT_CURSOR));
    const { total, clients, next } = await hub.registry.list(limit, after);
    const iso = (ms: number) => new Date(ms).toISOString();
    return c.json({
      data: clients.map((cl) => ({
        ...cl,
        connected_at: iso(cl.connected_at),
        expires_at: iso(cl.expires_at),
      })),
      next_cursor: next ? encodePageCursor([next.expires_at, next.id]) : null,
      total,
    }, 200);
  });
  app.openapi(schemaRoute, (c) => c.json(schema, 200));
  app.openapi(broadcastRoute, async (c) => {
    const { data, target } = c.req.valid("json");
    let published;
    try {
      published = await hub.publish("broadcast", data, target ? { target } : {});
    } catch (err) {
      if (err instanceof RangeError) {
        return problem(c, { code: "payload-too-large", status: 413, title: err.message }) as never;
      }
      throw err;
    }
    c.get("log").info("live feed broadcast", { offset: published.offset, targeted: !!target });
    return c.json({ topic: "broadcast" as const, offset: published.offset }, 202);
  });
  return app;
}
