/**
 * The Redis area: where the Upstash REST endpoint is.
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl } from "./spec.ts";

/** Redis (Upstash REST, the local bridge in dev/test). */
export const redis = defineArea(
  "Redis",
  {
    UPSTASH_REDIS_REST_URL: {
      description: "Upstash Redis REST URL (the local bridge in dev/test)",
      schema: httpUrl,
    },
    UPSTASH_REDIS_REST_TOKEN: {
      description: "Upstash Redis REST token",
      secret: true,
      schema: z.string().min(1),
    },
  },
  [],
  (v) => ({
    redis: { url: v.UPSTASH_REDIS_REST_URL, token: v.UPSTASH_REDIS_REST_TOKEN },
  }),
);
