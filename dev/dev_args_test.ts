import assert from "node:assert/strict";
import { parseDevArgs } from "./dev.ts";

Deno.test("deno task dev: --seed and --seed=N pick the demo data seed; other arguments are refused", () => {
  assert.deepEqual(parseDevArgs([]), { seed: null, dataDir: null });
  assert.equal(parseDevArgs(["--seed"]).seed, 1);
  assert.equal(parseDevArgs(["--seed=42"]).seed, 42);
  assert.throws(() => parseDevArgs(["--seed=x"]), /Unknown argument "--seed=x"/);
  assert.throws(
    () => parseDevArgs(["--bogus"]),
    /usage: deno task dev \[--seed\[=N\]\] \[--data-dir <path>\]/,
  );
});

Deno.test("deno task dev: --data-dir takes a path as the next argument or after =", () => {
  assert.deepEqual(parseDevArgs(["--data-dir", "./.pcove"]), { seed: null, dataDir: "./.pcove" });
  assert.deepEqual(parseDevArgs(["--seed=3", "--data-dir=/tmp/pc"]), {
    seed: 3,
    dataDir: "/tmp/pc",
  });
  assert.throws(() => parseDevArgs(["--data-dir"]), /--data-dir needs a path/);
  assert.throws(() => parseDevArgs(["--data-dir="]), /--data-dir needs a path/);
  assert.throws(() => parseDevArgs(["--data-dir", "--seed"]), /--data-dir needs a path/);
});
