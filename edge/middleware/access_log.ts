/**
 * Puts a request-scoped logger on the context and writes one access-log line
 * per request (client address as edge/client_address.ts decides it, method,
 * path, status, duration, request id, and `user.id` once authentication has
 * set a principal).
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Deps } from "../../shared/deps.ts";
import type { Logger } from "../../shared/log.ts";
import { clientAddressOf } from "../client_address.ts";

/** Access-log middleware; needs the request-id middleware before it. */
export function accessLog(deps: Pick<Deps, "log" | "now">): MiddlewareHandler {
  return async function accessLog(c, next) {
    const started = deps.now();
    const log = deps.log.child({ request_id: c.get("requestId") });
    c.set("log", log);
    await next();
    writeAccessLine(c, log, deps.now() - started);
  };
}

/** Writes the access-log line of a finished request (none for `/health`). */
export function writeAccessLine(c: Context, log: Logger, durationMs: number): void {
  // Probes would flood the log at one line per second per instance.
  if (c.req.path === "/health") return;
  // Read after next(): authentication runs downstream of this middleware.
  // c.get(), not c.var: Hono builds c.var anew from every variable per read.
  const principal = c.get("principal") as { sub: string } | undefined;
  log.info("request", {
    ...(principal ? { "user.id": principal.sub } : {}),
    "client.address": clientAddressOf(c),
    method: c.req.method,
    path: c.req.path,
    status: c.res.status,
    duration_ms: durationMs,
  });
}
