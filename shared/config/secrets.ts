/**
 * The secrets area: where secret variables come from and how rotations are
 * picked up (shared/secrets/, docs/deploying.md).
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl, positiveInt } from "./spec.ts";

/** The source of secret variables. */
export const secrets = defineArea(
  "Secrets",
  {
    SECRETS_SOURCE: {
      description:
        "Where secret variables come from: `env` (`NAME` or a mounted `NAME_FILE`, re-read every `SECRETS_RELOAD_MS`) or `aws` (AWS Secrets Manager, see docs/deploying.md)",
      default: "env",
      schema: z.enum(["env", "aws"]),
    },
    SECRETS_RELOAD_MS: {
      description:
        "How often rotated secrets are picked up without a restart (`NAME_FILE` files re-read; the AWS cache consulted)",
      default: "5000",
      schema: positiveInt,
    },
    SECRETS_AWS_REGION: {
      description:
        "AWS region of the secrets (`SECRETS_SOURCE=aws`); unset: the SDK's default chain",
      optional: true,
      schema: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, "expected an AWS region like us-east-1"),
    },
    SECRETS_AWS_ENDPOINT: {
      description:
        "Secrets Manager endpoint override (a VPC endpoint; tests point it at a local server)",
      optional: true,
      schema: httpUrl,
    },
    SECRETS_AWS_PREFIX: {
      description:
        "Name prefix of the AWS secrets: `<prefix>database`, `<prefix>jwt`, `<prefix>api-keys`",
      default: "pleasant-cove/",
      schema: z.string().regex(/^[A-Za-z0-9/_+=.@-]*$/),
    },
    SECRETS_AWS_TTL_MS: {
      description:
        "Cached AWS secret values are refreshed in the background once older than this; the last good value is served while AWS is unreachable",
      default: "300000",
      schema: positiveInt,
    },
  },
  [],
  (v) => ({
    /** Where secrets come from and how rotations are picked up (shared/secrets/). */
    secrets: {
      source: v.SECRETS_SOURCE,
      reloadMs: v.SECRETS_RELOAD_MS,
      aws: {
        region: v.SECRETS_AWS_REGION ?? null,
        endpoint: v.SECRETS_AWS_ENDPOINT ?? null,
        prefix: v.SECRETS_AWS_PREFIX,
        ttlMs: v.SECRETS_AWS_TTL_MS,
      },
    },
  }),
);
