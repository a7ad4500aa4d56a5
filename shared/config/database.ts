/**
 * The database area: where Postgres is, how the Neon driver reaches it, and
 * the pool and write budgets.
 *
 * @module
 */
import { z } from "zod";
import { bool, defineArea, positiveInt } from "./spec.ts";

const postgresUrl = z.string().regex(
  /^postgres(ql)?:\/\/.+/,
  "expected a postgres:// or postgresql:// URL",
);

/** Postgres (Neon in production, a local server behind the WebSocket proxy in dev/test). */
export const database = defineArea(
  "Database",
  {
    DATABASE_URL: {
      description: "Postgres connection string (Neon in production)",
      secret: true,
      schema: postgresUrl,
    },
    NEON_WS_PROXY: {
      description: "WebSocket proxy `host:port/path` for the Neon driver; unset for real Neon",
      optional: true,
      schema: z.string().regex(/^[^\s/:]+:\d+\/\S*$/, "expected host:port/path without a scheme"),
    },
    NEON_USE_SECURE_WEBSOCKET: {
      description: "Use wss:// to reach Postgres (false only for the local proxy)",
      default: "true",
      schema: bool,
    },
    NEON_PIPELINE_CONNECT: {
      description: "Neon pipelined connect: `password` (Neon) or `false` (scram/trust servers)",
      default: "password",
      schema: z.enum(["password", "false"]).transform((
        v,
      ): "password" | false => (v === "false" ? false : "password")),
    },
    DB_POOL_MAX: {
      description: "Maximum Postgres connections per process",
      default: "10",
      schema: positiveInt,
    },
    DB_WRITE_TIMEOUT_MS: {
      description:
        "Deadline of a lead write's transaction; past it the connection is destroyed and the write fails as a database failure (docs/reliability.md)",
      default: "5000",
      schema: z.coerce.number().int().min(100).max(120_000),
    },
  },
  [],
  (v) => ({
    database: {
      url: v.DATABASE_URL,
      /** neonConfig.wsProxy string form (`host:port/path`); null for real Neon. */
      wsProxy: v.NEON_WS_PROXY ?? null,
      useSecureWebSocket: v.NEON_USE_SECURE_WEBSOCKET,
      pipelineConnect: v.NEON_PIPELINE_CONNECT,
      poolMax: v.DB_POOL_MAX,
      writeTimeoutMs: v.DB_WRITE_TIMEOUT_MS,
    },
  }),
);

/** Where Postgres is and how the Neon driver reaches it (config and dev stack alike). */
export type DatabaseTarget = Pick<
  ReturnType<typeof database.build>["database"],
  "url" | "wsProxy" | "useSecureWebSocket" | "pipelineConnect"
>;
