/**
 * Unsubscribe: the link in every outreach email (`GET /v1/unsubscribe?token=`)
 * and its RFC 8058 one-click form (`POST` with `List-Unsubscribe=One-Click`,
 * sent by the recipient's mail provider). Both are PUBLIC (see
 * `PUBLIC_ROUTES` in edge/gateway.ts): the signed token is the credential
 * (shared/email/unsubscribe.ts).
 *
 * Only the POST unsubscribes. The GET answers a page whose one button posts
 * that same form: mail security scanners and link prefetchers follow every
 * link in a message, so a GET that unsubscribed would opt people out who
 * never clicked (RFC 8058 § 1 gives the same reason for its POST). One page
 * visit and one click keeps within what CAN-SPAM allows an opt-out to take.
 * The effect, adding the address to `email_suppressions`, is idempotent;
 * send_email skips suppressed addresses.
 *
 * @module
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Deps } from "../../shared/deps.ts";
import { escapeHtml } from "../../shared/email/templates.ts";
import { verifyUnsubscribeToken } from "../../shared/email/unsubscribe.ts";
import type { AppEnv } from "../app_env.ts";
import { validationHook } from "../validation.ts";
import { ProblemSchema } from "./schemas.ts";

const TokenQuery = z.object({
  token: z.string().min(1).max(1024).openapi({
    description: "The signed token from the email's unsubscribe link",
  }),
});

const OneClickBody = z.object({
  "List-Unsubscribe": z.literal("One-Click").openapi({
    description: "RFC 8058: exactly `One-Click`",
  }),
}).openapi("OneClickUnsubscribe");

const html = {
  "text/html": { schema: z.string().openapi({ example: "<!doctype html>…" }) },
};

const errors = {
  400: {
    description: "`invalid-unsubscribe-token` (malformed or tampered), or `invalid-request`",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
  415: {
    description: "Unsupported content type",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
  429: {
    description: "Rate limit exceeded (per client address)",
    content: { "application/problem+json": { schema: ProblemSchema } },
  },
};

const linkRoute = createRoute({
  method: "get",
  path: "/v1/unsubscribe",
  operationId: "showUnsubscribePage",
  tags: ["outreach"],
  summary:
    "The link in every email: a page with one button that unsubscribes (POST); changes nothing itself",
  security: [],
  request: { query: TokenQuery },
  responses: {
    200: { description: "A page asking to confirm with one click", content: html },
    ...errors,
  },
});

const oneClickRoute = createRoute({
  method: "post",
  path: "/v1/unsubscribe",
  operationId: "unsubscribe",
  tags: ["outreach"],
  summary: "RFC 8058 one-click unsubscribe (sent by mail providers); no login",
  security: [],
  request: {
    query: TokenQuery,
    body: {
      required: true,
      content: {
        "application/x-www-form-urlencoded": { schema: OneClickBody },
        "multipart/form-data": { schema: OneClickBody },
      },
    },
  },
  responses: {
    200: { description: "A page confirming the unsubscription", content: html },
    ...errors,
  },
});

/** The confirmation page; `address` is escaped. */
export function unsubscribedPage(address: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="robots" content="noindex"><title>Unsubscribed</title></head>
<body style="margin:0;padding:48px 24px;font-family:Helvetica,Arial,sans-serif;color:#1f2933;line-height:1.5">
<main style="max-width:480px;margin:0 auto">
<h1 style="font-size:22px">You are unsubscribed</h1>
<p>Pleasant Cove will not email <strong>${escapeHtml(address)}</strong> again.</p>
<p style="color:#6b7280;font-size:14px">Unsubscribed by mistake? Reply to any of our emails and we will add you back.</p>
</main>
</body>
</html>
`;
}

/**
 * The page of the link: one button posting the RFC 8058 form to the same URL
 * (no `action`: the form goes to this page's own URL, token included, also
 * behind a path prefix). `address` is escaped.
 */
export function confirmPage(address: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="robots" content="noindex"><title>Unsubscribe</title></head>
<body style="margin:0;padding:48px 24px;font-family:Helvetica,Arial,sans-serif;color:#1f2933;line-height:1.5">
<main style="max-width:480px;margin:0 auto">
<h1 style="font-size:22px">Unsubscribe from Pleasant Cove</h1>
<p>Stop all email to <strong>${escapeHtml(address)}</strong>?</p>
<form method="post">
<input type="hidden" name="List-Unsubscribe" value="One-Click">
<button type="submit" style="font-size:16px;padding:10px 20px;border-radius:6px;border:0;background:#1f2933;color:#fff;cursor:pointer">Unsubscribe</button>
</form>
</main>
</body>
</html>
`;
}

/** Routes of `/v1/unsubscribe`. */
export function unsubscribeRoutes(deps: Pick<Deps, "sql" | "config">): OpenAPIHono<AppEnv> {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  // Read per request: a rotated UNSUBSCRIBE_SECRET (shared/secrets/) applies at once.
  const secrets = () => deps.config.email.unsubscribeVerifySecrets;

  /** The URL carries a credential: keep it out of caches and Referer headers. */
  function keepPrivate(c: Context<AppEnv>) {
    c.header("Cache-Control", "no-store");
    c.header("Referrer-Policy", "no-referrer");
  }

  async function unsubscribe(c: Context<AppEnv>, token: string) {
    // Throws 400 invalid-unsubscribe-token before anything is written.
    const address = verifyUnsubscribeToken(token, secrets());
    await deps.sql.query(
      `INSERT INTO email_suppressions (address, reason) VALUES ($1, 'unsubscribed')
       ON CONFLICT DO NOTHING`,
      [address],
    );
    c.get("log")?.info("address unsubscribed", { method: c.req.method });
    keepPrivate(c);
    return unsubscribedPage(address);
  }

  app.openapi(linkRoute, (c) => {
    // A bad token is a 400 here already, not after the click.
    const address = verifyUnsubscribeToken(c.req.valid("query").token, secrets());
    keepPrivate(c);
    return c.html(confirmPage(address), 200);
  });

  app.openapi(oneClickRoute, async (c) => {
    return c.html(await unsubscribe(c, c.req.valid("query").token), 200);
  });

  return app;
}
