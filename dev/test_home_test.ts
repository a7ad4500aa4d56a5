import assert from "node:assert/strict";
import { repositorySources, testHomeViolations } from "./test_home.ts";

const ROOT = new URL("../", import.meta.url);

// The samples are assembled from parts, so that this file does not define
// what it describes (the repository check reads it too).
const fn = (name: string) => `async function ${name}() {}`;
const SANITIZERS_OFF = ["sanitizeOps", "sanitizeResources"].map((o) => `${o}: false`).join(", ");

Deno.test("testHomeViolations() flags support files, helper definitions and sanitizer literals outside testing/", () => {
  const found = testHomeViolations([
    { path: "shared/queue/test_support.ts", text: "" },
    { path: "tests/process_support.ts", text: "" },
    { path: "edge/ws/hub_test.ts", text: `${fn("waitUntil")}\n` },
    { path: "tests/x_test.ts", text: `const a = 1;\nexport ${fn("waitFor")}\n` },
    { path: "workers/y_test.ts", text: `const ${"fakeClock"} = () => 0;\n` },
    {
      path: "shared/z_test.ts",
      text: `Deno.test({ ${SANITIZERS_OFF} });`,
    },
  ]);
  assert.deepEqual(found, [
    "shared/queue/test_support.ts: test support files live in testing/",
    "tests/process_support.ts: test support files live in testing/",
    "edge/ws/hub_test.ts:1: waitUntil is defined in testing/; import it from there",
    "tests/x_test.ts:2: waitFor is defined in testing/; import it from there",
    "workers/y_test.ts:1: fakeClock is defined in testing/; import it from there",
    "shared/z_test.ts: use noSanitizers from testing/sanitizers.ts",
  ]);
});

Deno.test("testHomeViolations() allows the home, uses and methods of the same name", () => {
  assert.deepEqual(
    testHomeViolations([
      { path: "testing/wait.ts", text: `export ${fn("waitUntil")}` },
      { path: "testing/queue_support.ts", text: "" },
      { path: "tests/a_test.ts", text: "await waitUntil(() => true);\nawait client.waitFor(f);" },
      { path: "testing/live_feed.ts", text: "class C {\n  async waitFor() {}\n}" },
      { path: "tests/b_test.ts", text: "class C {\n  async waitFor() {}\n}\nconst w = p.waitFor;" },
      { path: "shared/support.ts", text: "" },
    ]),
    [],
  );
});

Deno.test("test helpers live in testing/ only: no support file or helper copy elsewhere", async () => {
  const files = await repositorySources(ROOT);
  // The walk really reads the repository: the home and a suite that uses it are in it.
  assert.ok(files.some((f) => f.path === "testing/wait.ts"), "testing/wait.ts read");
  assert.ok(files.some((f) => f.path === "tests/capability_test.ts"), "tests/ read");
  assert.deepEqual(testHomeViolations(files), []);
});
