/**
 * The rule that keeps test helpers in one home, `testing/` (docs/operations.md,
 * "Testing"): no `*_support.ts` or `*test_support*.ts` file anywhere else, and
 * no polling wait, namespace, fake clock, memory logger or sanitizer option
 * defined outside it. A second copy of a helper drifts (timeouts, messages,
 * poll intervals) and hides the one a newcomer should find; the check is run
 * by dev/test_home_test.ts.
 *
 * @module
 */
import { SOURCE_FOLDERS } from "./import_cycles.ts";

/** The folder every test helper lives in. */
export const TEST_HOME = "testing";

/** One module's path (from the repository root) and text. */
export interface SourceFile {
  path: string;
  text: string;
}

/** Helpers that only `testing/` may define (as a function, or as a `const`/`let`). */
export const HOME_ONLY_HELPERS = [
  "waitUntil",
  "waitFor",
  "waitForValue",
  "testNamespace",
  "fakeClock",
  "memoryLog",
  "noSanitizers",
  "routeHarness",
];

const SUPPORT_NAME = /(^|\/)[^/]*(test_support[^/]*|_support)\.ts$/;
const DEFINITION = new RegExp(
  String.raw`(?:^|[^.\w$])(?:function\s*\*?\s*|(?:const|let|var)\s+)(${
    HOME_ONLY_HELPERS.join("|")
  })\b`,
  "gm",
);
const SANITIZERS_OFF = /sanitizeOps:\s*false\s*,\s*sanitizeResources:\s*false/;

/** Where a file breaks the rule: one sentence per finding, empty when it keeps it. */
export function testHomeViolations(files: readonly SourceFile[]): string[] {
  const found: string[] = [];
  for (const { path, text } of files) {
    if (path.startsWith(`${TEST_HOME}/`)) continue;
    if (SUPPORT_NAME.test(path)) {
      found.push(`${path}: test support files live in ${TEST_HOME}/`);
    }
    for (const m of text.matchAll(DEFINITION)) {
      const line = text.slice(0, m.index).split("\n").length;
      found.push(`${path}:${line}: ${m[1]} is defined in ${TEST_HOME}/; import it from there`);
    }
    if (SANITIZERS_OFF.test(text)) {
      found.push(`${path}: use noSanitizers from ${TEST_HOME}/sanitizers.ts`);
    }
  }
  return found;
}

/** Every `.ts` module of the repository's source folders and of the test home. */
export async function repositorySources(root: URL): Promise<SourceFile[]> {
  const files: SourceFile[] = [];
  async function walk(dir: string): Promise<void> {
    for await (const entry of Deno.readDir(new URL(dir, root))) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory && entry.name !== "node_modules") await walk(path);
      else if (entry.isFile && entry.name.endsWith(".ts")) {
        files.push({ path, text: await Deno.readTextFile(new URL(path, root)) });
      }
    }
  }
  for (const dir of new Set([...SOURCE_FOLDERS, TEST_HOME])) await walk(dir);
  return files;
}
