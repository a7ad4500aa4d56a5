import assert from "node:assert/strict";
import { seedFlag } from "./dev.ts";

Deno.test("deno task dev: --seed and --seed=N pick the demo data seed; other arguments are refused", () => {
  assert.equal(seedFlag([]), null);
  assert.equal(seedFlag(["--seed"]), 1);
  assert.equal(seedFlag(["--seed=42"]), 42);
  assert.throws(() => seedFlag(["--seed=x"]), /Unknown argument "--seed=x"/);
  assert.throws(() => seedFlag(["--bogus"]), /usage: deno task dev \[--seed\[=N\]\]/);
});
