/**
 * Shared OpenAPI schemas of the edge (problem details, ids).
 *
 * @module
 */
import { z } from "@hono/zod-openapi";

/** RFC 9457 problem details as the edge sends them. */
export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  code: z.string().openapi({ description: "Stable machine-readable error code" }),
  detail: z.string().optional(),
  instance: z.string().optional(),
  request_id: z.string().optional(),
}).passthrough().openapi("Problem");

/** Problem responses every authenticated route may give. */
export function problemResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Invalid request (each invalid field is listed)",
    401: "Missing or invalid bearer token",
    403: "The principal may not call this route",
    404: "Not found",
    409: "A request with this Idempotency-Key is in progress",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Idempotency-Key reused with a different request",
    429: "Rate limit exceeded",
    503: "A dependency is unavailable",
  };
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      {
        description: descriptions[s] ?? "Error",
        content: { "application/problem+json": { schema: ProblemSchema } },
      },
    ]),
  );
}

/** A read's last good answer while its breaker refuses calls (edge/degraded/fallbacks.ts). */
export function degradedSchema<T extends z.ZodType>(data: T, name: string, example: string) {
  return z.object({
    status: z.literal("degraded"),
    message: z.string().openapi({ example }),
    cached_data: data,
    cached_at: z.string(),
    age_s: z.number().int(),
    retry_after: z.number().int(),
  }).openapi(name);
}
