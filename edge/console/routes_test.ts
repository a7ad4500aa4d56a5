import assert from "node:assert/strict";
import { createLogger } from "../../shared/log.ts";
import { fakeClock } from "../../testing/clock.ts";
import { testAuth } from "../../testing/auth.ts";
import { createVerifier } from "../auth/verify.ts";
import { type AssetSource, buildAssetTable } from "./assets.ts";
import { CONSOLE_CSP } from "./page.ts";
import { consoleRoutes } from "./routes.ts";

const quiet = createLogger({ write: () => {} });

function app(env: "development" | "test" | "production") {
  const clock = fakeClock();
  return { clock, app: consoleRoutes({ env, auth: testAuth(), now: clock.now }) };
}

function signIn(a: ReturnType<typeof app>["app"], body: unknown, type = "application/json") {
  return a.request("/console/dev-sign-in", {
    method: "POST",
    headers: { "Content-Type": type },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

Deno.test("GET /console is a shell with one same-origin module script, under a strict CSP", async () => {
  const res = await app("production").app.request("/console");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("Content-Security-Policy"), CONSOLE_CSP);
  assert.match(CONSOLE_CSP, /script-src 'self';/);
  assert.doesNotMatch(CONSOLE_CSP, /unsafe-inline|unsafe-eval|https?:/);
  assert.equal(res.headers.get("Cache-Control"), "no-cache");
  const html = await res.text();
  const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
  assert.equal(scripts.length, 1);
  assert.equal(scripts[0]![1], "", "no inline script");
  assert.match(scripts[0]![0], /src="\/console\/assets\/app\.[0-9a-f]{16}\.js"/);
  assert.doesNotMatch(html, /style=|https?:\/\//, "no inline style, nothing from another origin");
  assert.match(html, /data-dev-sign-in="false"/);
});

Deno.test("assets are served by hashed name, immutable, with an ETag; unknown names are 404", async () => {
  const { app: a } = app("production");
  const html = await (await a.request("/console")).text();
  const urls = [...html.matchAll(/(?:src|href)="(\/console\/assets\/[^"]+)"/g)].map((m) => m[1]!);
  assert.equal(urls.length, 3);
  for (const url of urls) {
    const res = await a.request(url);
    assert.equal(res.status, 200, url);
    assert.equal(res.headers.get("Cache-Control"), "public, max-age=31536000, immutable");
    assert.match(
      res.headers.get("Content-Type")!,
      url.endsWith(".css") ? /^text\/css/ : /^text\/javascript/,
    );
    const etag = res.headers.get("ETag")!;
    assert.ok(url.includes(etag.slice(1, -1)), "the ETag is the hash in the name");
    await res.body?.cancel();
    const again = await a.request(url, { headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
  }
  const app1 = await (await a.request(urls.find((u) => u.includes("/app."))!)).text();
  // Imports point at hashed URLs of this edge, never at a bare package name or a CDN.
  const imports = [...app1.matchAll(/from\s*"([^"]+)"/g)].map((m) => m[1]!);
  assert.ok(imports.length >= 5);
  for (const i of imports) assert.match(i, /^\/console\/assets\/[a-z-]+\.[0-9a-f]{16}\.js$/);
  const missing = await a.request("/console/assets/app.0000000000000000.js");
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).code, "not-found");
});

Deno.test("buildAssetTable() refuses an import it cannot serve, and a changed file gets a new name", () => {
  const dep: AssetSource = {
    specifier: "./a.js",
    name: "a",
    ext: "js",
    text: "export const a = 1;",
  };
  const user: AssetSource = {
    specifier: "./b.js",
    name: "b",
    ext: "js",
    text: 'import { a } from "./a.js";',
  };
  const table = buildAssetTable([dep, user]);
  assert.equal(
    table.bySpecifier.get("./b.js")!.body,
    `import { a } from "${table.bySpecifier.get("./a.js")!.url}";`,
  );
  assert.throws(() => buildAssetTable([user, dep]), /imports "\.\/a\.js", which is not listed/);
  const changed = buildAssetTable([{ ...dep, text: "export const a = 2;" }, user]);
  assert.notEqual(changed.bySpecifier.get("./b.js")!.file, table.bySpecifier.get("./b.js")!.file);
});

Deno.test("the dev sign-in does not exist in production", async () => {
  const { app: a } = app("production");
  const res = await signIn(a, { role: "admin" });
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("the dev sign-in mints a one-hour token of the chosen role in development and test", async () => {
  for (const env of ["development", "test"] as const) {
    const { app: a, clock } = app(env);
    const shell = await (await a.request("/console")).text();
    assert.match(shell, /data-dev-sign-in="true"/);
    const res = await signIn(a, { role: "viewer" });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Cache-Control"), "no-store");
    const body = await res.json();
    assert.equal(body.sub, "dev-viewer");
    assert.equal(body.expires_at, new Date(clock.now() + 3_600_000).toISOString());
    const verifier = createVerifier(testAuth(), { log: quiet, now: clock.now });
    const principal = await verifier.verify(body.token);
    assert.deepEqual([principal.sub, principal.roles], ["dev-viewer", ["viewer"]]);
    clock.advance(3_600_000 + 31_000);
    await assert.rejects(verifier.verify(body.token), "expired after an hour (and the tolerance)");
  }
});

Deno.test("the dev sign-in refuses anything but a JSON role", async () => {
  const { app: a } = app("test");
  const form = await signIn(a, "role=admin", "application/x-www-form-urlencoded");
  assert.equal(form.status, 415);
  assert.equal((await form.json()).code, "unsupported-media-type");
  for (const body of [{ role: "root" }, { role: "admin", sub: "x" }, {}, "not json", "[]"]) {
    const res = await signIn(a, body);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((await res.json()).code, "invalid-request");
  }
});
