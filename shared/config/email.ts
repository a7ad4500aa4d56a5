/**
 * The email area: how outreach email is delivered, its sender identity and
 * the unsubscribe-link keys (shared/email/).
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl } from "./spec.ts";

/** The unsubscribe-link key of local setups; refused outside development/test like the JWT key. */
export const DEV_UNSUBSCRIBE_SECRET = "local-unsubscribe-secret-not-for-production";

// Links already sent must keep working after a rotation: every line verifies.
const unsubscribeSecrets = z.string().transform((text, ctx) => {
  const secrets = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
  if (secrets.length === 0 || secrets.some((s) => new TextEncoder().encode(s).length < 16)) {
    ctx.addIssue({
      code: "custom",
      message: "expected secrets of at least 16 bytes, one per line",
    });
    return z.NEVER;
  }
  return secrets;
});

/** Outreach email delivery and unsubscribe links. */
export const email = defineArea(
  "Email",
  {
    EMAIL_PROVIDER: {
      description:
        "How send_email delivers: `file` (.eml files in EMAIL_DIR), `smtp` or `http_api`",
      default: "file",
      schema: z.enum(["file", "smtp", "http_api"]),
    },
    EMAIL_DIR: {
      description: "Folder the `file` email provider writes .eml files to",
      default: ".tmp/outbox",
      schema: z.string().min(1),
    },
    SMTP_URL: {
      description:
        "SMTP server for the `smtp` provider, e.g. `smtp://user:pass@mail.example:587`; with credentials, `smtp://` must upgrade with STARTTLS (`smtps://` is TLS from the start)",
      optional: true,
      secret: true,
      schema: z.string().regex(/^smtps?:\/\/.+/, "expected smtp:// or smtps://"),
    },
    EMAIL_API_URL: {
      description: "Endpoint of the `http_api` email provider (POST JSON, honours Idempotency-Key)",
      optional: true,
      schema: httpUrl,
    },
    EMAIL_API_KEY: {
      description: "Bearer key for the `http_api` email provider",
      optional: true,
      secret: true,
      schema: z.string().min(1),
    },
    EMAIL_FROM: {
      description: "From address of outreach email",
      default: "Pleasant Cove <hello@pleasantcove.local>",
      schema: z.string().min(3).max(300),
    },
    EMAIL_MESSAGE_ID_DOMAIN: {
      description: "Domain of the deterministic Message-IDs (`<ledger-id@domain>`)",
      default: "pleasantcove.local",
      schema: z.string().regex(/^[a-z0-9.-]+$/i),
    },
    UNSUBSCRIBE_SECRET: {
      description:
        "HMAC key of unsubscribe links (at least 16 bytes); several, one per line, during a rotation: the first signs, every one verifies",
      default: DEV_UNSUBSCRIBE_SECRET,
      secret: true,
      schema: unsubscribeSecrets,
    },
  },
  [],
  (v) => ({
    email: {
      provider: v.EMAIL_PROVIDER,
      dir: v.EMAIL_DIR,
      smtpUrl: v.SMTP_URL ?? null,
      apiUrl: v.EMAIL_API_URL ?? null,
      apiKey: v.EMAIL_API_KEY ?? null,
      from: v.EMAIL_FROM,
      messageIdDomain: v.EMAIL_MESSAGE_ID_DOMAIN,
      /** Signs unsubscribe links (the first UNSUBSCRIBE_SECRET line). */
      unsubscribeSecret: v.UNSUBSCRIBE_SECRET[0]!,
      /** Every UNSUBSCRIBE_SECRET line: links signed with any of them verify. */
      unsubscribeVerifySecrets: v.UNSUBSCRIBE_SECRET,
    },
  }),
);
