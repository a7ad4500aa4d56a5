/**
 * Run by dev/test_all.ts AFTER the suite and the shared stack have stopped
 * (so it is not named *_test.ts and the main run does not pick it up): every
 * stack of the run lived under PCOVE_TEST_RUN_DIR, so any directory left there
 * or any process mentioning it is a leak.
 */
import assert from "node:assert/strict";
import { readEnvironment } from "../shared/config/mod.ts";
import { processesUsing } from "./leftovers.ts";

const runDir = readEnvironment().PCOVE_TEST_RUN_DIR;

Deno.test({
  name: "after the suite no stack temp directory remains",
  ignore: !runDir,
  fn() {
    const left = [...Deno.readDirSync(runDir!)].map((e) => e.name);
    assert.deepEqual(left, [], `left behind in ${runDir}: ${left.join(", ")}`);
  },
});

Deno.test({
  name: "after the suite no redis-server or postgres started by the run is alive",
  ignore: !runDir,
  fn() {
    assert.deepEqual(processesUsing(runDir!), []);
  },
});
