/**
 * The console's static assets: the client modules (edge/console/client/)
 * and the npm packages they use (Preact, its hooks, htm, uPlot), read into
 * the module graph as text at build time and served by the edge itself — no
 * CDN at run time, no build step.
 *
 * Every asset is served under a content-hashed name
 * (`/console/assets/app.3f9c0a1b2c3d4e5f.js`), so it can be cached for a year as
 * `immutable`: a changed file gets a new name. Import specifiers inside the
 * modules (`"preact"`, `"./api.js"`) are rewritten to those hashed URLs
 * before hashing, which is why the table lists dependencies before their
 * importers. An import the table does not know fails at startup, not in the
 * browser.
 *
 * @module
 */
import { createHash } from "node:crypto";
import preact from "preact" with { type: "text" };
import preactHooks from "preact/hooks" with { type: "text" };
import htm from "htm" with { type: "text" };
import uplot from "uplot/dist/uPlot.esm.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import api from "./client/api.js" with { type: "text" };
import feed from "./client/feed.js" with { type: "text" };
import ui from "./client/ui.js" with { type: "text" };
import charts from "./client/charts.js" with { type: "text" };
import viewsOps from "./client/views_ops.js" with { type: "text" };
import viewsQueue from "./client/views_queue.js" with { type: "text" };
import viewsLeads from "./client/views_leads.js" with { type: "text" };
import app from "./client/app.js" with { type: "text" };
import css from "./client/console.css" with { type: "text" };

/** Where hashed assets are served. */
export const ASSET_PREFIX = "/console/assets/";

/** One served file. */
export interface Asset {
  /** The hashed file name, e.g. `app.3f9c0a1b2c3d4e5f.js`. */
  file: string;
  url: string;
  contentType: string;
  body: string;
  /** Strong ETag (the content hash). */
  etag: string;
}

/** The asset table: by import specifier (`"preact"`, `"./app.js"`) and by hashed file name. */
export interface AssetTable {
  bySpecifier: ReadonlyMap<string, Asset>;
  byFile: ReadonlyMap<string, Asset>;
}

/** A source to serve: its import specifier, the base of its file name and its text. */
export interface AssetSource {
  specifier: string;
  name: string;
  ext: "js" | "css";
  text: string;
}

/** Dependencies first: a module's imports must already be in the table when it is added. */
export const CONSOLE_SOURCES: readonly AssetSource[] = [
  { specifier: "preact", name: "preact", ext: "js", text: preact },
  { specifier: "preact/hooks", name: "preact-hooks", ext: "js", text: preactHooks },
  { specifier: "htm", name: "htm", ext: "js", text: htm },
  { specifier: "uplot", name: "uplot", ext: "js", text: uplot },
  { specifier: "uplot.css", name: "uplot", ext: "css", text: uplotCss },
  { specifier: "./console.css", name: "console", ext: "css", text: css },
  { specifier: "./api.js", name: "api", ext: "js", text: api },
  { specifier: "./feed.js", name: "feed", ext: "js", text: feed },
  { specifier: "./ui.js", name: "ui", ext: "js", text: ui },
  { specifier: "./charts.js", name: "charts", ext: "js", text: charts },
  { specifier: "./views_ops.js", name: "views-ops", ext: "js", text: viewsOps },
  { specifier: "./views_queue.js", name: "views-queue", ext: "js", text: viewsQueue },
  { specifier: "./views_leads.js", name: "views-leads", ext: "js", text: viewsLeads },
  { specifier: "./app.js", name: "app", ext: "js", text: app },
];

const TYPES = { js: "text/javascript; charset=utf-8", css: "text/css; charset=utf-8" } as const;

// Static `import … from "x"`, `export … from "x"` and bare `import "x"`, in
// minified and hand-written code alike. The client uses no dynamic import().
const IMPORT = /(\bfrom\s*|\bimport\s*)(["'])([^"'\n]+)\2/g;

/** Builds the table from `sources` (dependencies first); throws a TypeError on an unknown import. */
export function buildAssetTable(sources: readonly AssetSource[] = CONSOLE_SOURCES): AssetTable {
  const bySpecifier = new Map<string, Asset>();
  const byFile = new Map<string, Asset>();
  for (const source of sources) {
    const body = source.ext !== "js" ? source.text : source.text.replace(
      IMPORT,
      (_all, lead: string, quote: string, specifier: string) => {
        const dep = bySpecifier.get(specifier);
        if (!dep || !dep.file.endsWith(".js")) {
          throw new TypeError(
            `console asset ${source.specifier} imports "${specifier}", which is not listed before it`,
          );
        }
        return `${lead}${quote}${dep.url}${quote}`;
      },
    );
    const hash = createHash("sha256").update(body).digest("hex").slice(0, 16);
    const file = `${source.name}.${hash}.${source.ext}`;
    const asset: Asset = {
      file,
      url: `${ASSET_PREFIX}${file}`,
      contentType: TYPES[source.ext],
      body,
      etag: `"${hash}"`,
    };
    bySpecifier.set(source.specifier, asset);
    byFile.set(file, asset);
  }
  return { bySpecifier, byFile };
}
