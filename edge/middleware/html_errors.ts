/**
 * Pages a person reaches by following a link (the unsubscribe link and its
 * confirmation) must not answer a browser with a raw problem+json document.
 * {@linkcode htmlErrorPages} turns any problem answer on its paths into an
 * HTML page with the same status, title and detail when the request prefers
 * `text/html` (a browser); API clients keep problem+json. It wraps the whole
 * chain, so 400/415/429 from the gateway get a page too.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";
import { escapeHtml } from "../../shared/email/templates.ts";

/** The q-value `type` gets in an Accept header (0 when absent). */
function quality(accept: string, type: string): number {
  let best = 0;
  for (const part of accept.split(",")) {
    const [range, ...params] = part.trim().toLowerCase().split(";");
    if (range !== type) continue;
    const q = params.map((p) => p.trim()).find((p) => p.startsWith("q="));
    best = Math.max(best, q === undefined ? 1 : Number(q.slice(2)) || 0);
  }
  return best;
}

/**
 * True when the client asks for HTML more than for JSON: it names
 * `text/html` and no JSON type with at least the same q-value. `*\/*` alone
 * (curl, most HTTP libraries) is not a preference for HTML.
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = quality(accept, "text/html");
  const json = Math.max(
    quality(accept, "application/json"),
    quality(accept, "application/problem+json"),
  );
  return html > 0 && html > json;
}

/** An error page; `title` and `detail` are escaped. */
export function errorPage(status: number, title: string, detail: string | undefined): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="robots" content="noindex"><title>${
    escapeHtml(title)
  }</title></head>
<body style="margin:0;padding:48px 24px;font-family:Helvetica,Arial,sans-serif;color:#1f2933;line-height:1.5">
<main style="max-width:480px;margin:0 auto">
<h1 style="font-size:22px">${escapeHtml(title)}</h1>
${detail ? `<p>${escapeHtml(detail)}</p>\n` : ""}<p style="color:#6b7280;font-size:14px">${
    status === 429
      ? "Please wait a minute and try again."
      : "If you followed a link from one of our emails, reply to that email and we will take care of it."
  }</p>
</main>
</body>
</html>
`;
}

/** Rewrites problem answers to HTML pages for browsers; mount on the paths people open. */
export function htmlErrorPages(): MiddlewareHandler {
  return async function htmlErrorPages(c: Context, next) {
    await next();
    const res = c.res;
    if (!(res.headers.get("content-type") ?? "").startsWith("application/problem+json")) return;
    if (!prefersHtml(c.req.header("accept"))) return;
    let body: { title?: unknown; detail?: unknown } = {};
    try {
      body = await res.clone().json();
    } catch {
      // A problem without a readable body still gets a page with its status.
    }
    const headers = new Headers(res.headers);
    headers.set("Content-Type", "text/html; charset=UTF-8");
    headers.delete("Content-Length");
    headers.set("Vary", "Accept");
    const title = typeof body.title === "string" ? body.title : "Something went wrong";
    const detail = typeof body.detail === "string" ? body.detail : undefined;
    c.res = undefined as unknown as Response; // Hono merges headers into a replaced response otherwise
    c.res = new Response(errorPage(res.status, title, detail), { status: res.status, headers });
  };
}
