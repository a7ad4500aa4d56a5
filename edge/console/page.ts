/**
 * The console's HTML shell: the stylesheets and ONE module script, all from
 * hashed asset URLs, and whether this edge offers the development sign-in
 * (`data-dev-sign-in`, read by the client). No inline script or style: the
 * Content-Security-Policy below forbids both.
 *
 * @module
 */
import type { AssetTable } from "./assets.ts";

/**
 * The console's Content-Security-Policy: scripts, styles and connections
 * (fetch and the live feed's WebSocket; `'self'` covers ws:/wss: of the same
 * host) only from this origin; nothing may frame it; forms post nowhere else.
 * `img-src data:` is for uPlot's legend markers.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** What the shell needs to know. */
export interface ShellOptions {
  assets: AssetTable;
  /** Offer the one-click development sign-in (APP_ENV=development|test only). */
  devSignIn: boolean;
}

function url(assets: AssetTable, specifier: string): string {
  const asset = assets.bySpecifier.get(specifier);
  if (!asset) throw new TypeError(`console asset ${specifier} is missing`);
  return asset.url;
}

/** Renders the page served at `GET /console`. */
export function renderShell(options: ShellOptions): string {
  const { assets, devSignIn } = options;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>Pleasant Cove console</title>
<link rel="stylesheet" href="${url(assets, "uplot.css")}">
<link rel="stylesheet" href="${url(assets, "./console.css")}">
<script type="module" src="${url(assets, "./app.js")}"></script>
</head>
<body data-dev-sign-in="${devSignIn}">
<div id="root">
  <main class="boot">
    <h1>Pleasant Cove console</h1>
    <p>Loading…</p>
    <noscript><p>The console needs JavaScript (served by this edge; no third-party scripts).</p></noscript>
  </main>
</div>
</body>
</html>
`;
}
