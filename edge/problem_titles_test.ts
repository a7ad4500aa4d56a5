import assert from "node:assert/strict";
import { useTestStack } from "../testing/stack.ts";
import { routeHarness } from "../testing/route_harness.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { PROBLEM_TITLES } from "./problem_titles.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

/** Where a problem code is written in the source: a problem() call, an AppError, a refusal. */
const EMITTERS = [
  /problem\(\s*c\s*,\s*\{[^{}]*?\bcode:\s*"([a-z0-9-]+)"/gs,
  /super\(\s*"([a-z0-9-]+)"\s*,\s*\d{3}\b/gs,
  /new AppError\(\s*"([a-z0-9-]+)"\s*,\s*\d{3}\b/gs,
  // A refusal handed to problem() later, e.g. the live feed's admission caps (edge/ws/hub.ts).
  /\bcode:\s*"([a-z0-9-]+)"\s*,\s*status:\s*\d{3}\b/gs,
  // A code picked by a condition: `code: x === "unknown-event-type" ? …` (edge/ws/routes.ts),
  // `code: err.status === 400 ? "bad-request" : "http-error"` (edge/app.ts).
  /\bcode:\s*[^,\n]*?\?\s*(?:"([a-z0-9-]+)"|[a-z.]+)\s*:\s*"([a-z0-9-]+)"/g,
  /\bcode:\s*[a-z.]+\s*===\s*"([a-z0-9-]+)"/g,
];

async function* sources(dir: string): AsyncGenerator<[string, string]> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* sources(path);
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith("_test.ts")) {
      yield [path, await Deno.readTextFile(path)];
    }
  }
}

Deno.test("every problem code the code base emits has its one catalog title, and only those", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const emitted = new Map<string, string>();
  for (const dir of ["edge", "shared", "workers"]) {
    for await (const [path, text] of sources(`${root}${dir}`)) {
      for (const pattern of EMITTERS) {
        for (const m of text.matchAll(pattern)) {
          for (const code of m.slice(1)) if (code) emitted.set(code, path.slice(root.length));
        }
      }
    }
  }
  assert.ok(emitted.size >= 60, `only ${emitted.size} codes found: the walk is broken`);
  const missing = [...emitted].filter(([code]) => !Object.hasOwn(PROBLEM_TITLES, code));
  assert.deepEqual(missing, [], "codes without a catalog title (edge/problem_titles.ts)");
  const stale = Object.keys(PROBLEM_TITLES).filter((code) => !emitted.has(code));
  assert.deepEqual(stale, [], "catalog entries nothing emits");
  for (const [code, title] of Object.entries(PROBLEM_TITLES)) {
    assert.match(code, /^[a-z][a-z0-9-]*$/);
    assert.ok(title.length > 0 && !title.endsWith("."), `${code}: "${title}"`);
  }
});

Deno.test({
  name: "responses carry the catalog title of their code; the specifics are in detail",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const unknownLead = crypto.randomUUID();
    const samples: [string, string, Parameters<typeof h.call>[2], string][] = [
      ["GET", "/v1/nothing-here", {}, "not-found"],
      ["DELETE", "/v1/me", {}, "method-not-allowed"],
      ["GET", "/v1/leads", { auth: null }, "missing-token"],
      ["GET", "/v1/leads", { auth: "Bearer not.a.token" }, "invalid-token"],
      ["PATCH", `/v1/leads/${unknownLead}`, { json: {} }, "forbidden"],
      ["GET", "/v1/leads?stauts=new", {}, "invalid-request"],
      ["GET", `/v1/leads/${unknownLead}`, {}, "lead-not-found"],
      ["POST", "/v1/leads", { body: "name=x", type: "text/plain" }, "unsupported-media-type"],
      ["GET", `/v1/tasks/${crypto.randomUUID()}`, {}, "task-not-found"],
    ];
    for (const [method, path, options, code] of samples) {
      const res = await h.call(method, path, options);
      const body = await res.json();
      assert.equal(body.code, code, `${method} ${path}: ${JSON.stringify(body)}`);
      assert.equal(body.title, PROBLEM_TITLES[code], `${method} ${path}`);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      if (code === "lead-not-found") assert.match(body.detail, new RegExp(unknownLead));
      if (code === "forbidden") assert.match(body.detail, /admin/);
    }
  },
});
