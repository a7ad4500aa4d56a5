/**
 * Preloaded (`deno run --preload`) into the campaign's edges and workers by
 * dev/chaos/cluster.ts: an uncaught exception or unhandled rejection is
 * logged with where it was thrown (file, line and column: what found the
 * uncaught pool-client error in shared/db/pool.ts) before the runtime ends
 * the process as usual; the report lists this line among the process
 * errors. A thrown non-Error value (`throw null`) carries no location in
 * Deno, so for those only the value is known. It changes nothing else: no
 * default is prevented.
 *
 * @module
 */
function describe(value: unknown): string {
  if (value instanceof Error) return `${value.name}: ${value.message}\n${value.stack ?? ""}`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

globalThis.addEventListener("error", (e) => {
  console.error(JSON.stringify({
    level: "error",
    msg: "uncaught exception (the process ends)",
    file: e.filename,
    line: e.lineno,
    column: e.colno,
    error: describe(e.error),
  }));
});

globalThis.addEventListener("unhandledrejection", (e) => {
  console.error(JSON.stringify({
    level: "error",
    msg: "unhandled rejection (the process ends)",
    error: describe(e.reason),
  }));
});
