import assert from "node:assert/strict";
import { DEV_HS256_KEY } from "../config/mod.ts";
import { startSecretReloader } from "./reloader.ts";
import { memoryLog } from "../../testing/log.ts";

const KEYS_1 = "k1:reloader-secret-one-0123456789abcdef";
const KEYS_2 = "k1:reloader-secret-one-0123456789abcdef,k2:reloader-secret-two-0123456789abcdef";

Deno.test("startSecretReloader() applies a changed, valid value once and keeps the last good one otherwise", async () => {
  const files: Record<string, string | Error> = { JWT_HS256_KEYS: `${KEYS_1}\n` };
  const applied: [string, unknown][] = [];
  const { log, text: lines } = memoryLog();
  const reloader = startSecretReloader({
    read: (name) => {
      const f = files[name];
      return f instanceof Error ? Promise.reject(f) : Promise.resolve(f);
    },
    initial: { JWT_HS256_KEYS: KEYS_1 },
    apply: (name, value) => applied.push([name, value]),
    intervalMs: 3_600_000, // rounds are driven by check() here
    appEnv: "production",
    log,
  });
  try {
    assert.deepEqual(await reloader.check(), [], "unchanged: nothing applied");

    files.JWT_HS256_KEYS = `${KEYS_2}\n`;
    assert.deepEqual(await reloader.check(), ["JWT_HS256_KEYS"]);
    assert.deepEqual(applied.at(-1), ["JWT_HS256_KEYS", [
      { kid: "k1", secret: "reloader-secret-one-0123456789abcdef" },
      { kid: "k2", secret: "reloader-secret-two-0123456789abcdef" },
    ]]);
    assert.deepEqual(await reloader.check(), [], "applied once");

    files.JWT_HS256_KEYS = "k3:short";
    assert.deepEqual(await reloader.check(), []);
    assert.deepEqual(await reloader.check(), []);
    assert.equal(lines.filter((l) => l.includes("rotated secret is invalid")).length, 1);

    // The development key is refused in production, at run time as at start.
    files.JWT_HS256_KEYS = DEV_HS256_KEY;
    assert.deepEqual(await reloader.check(), []);
    assert.ok(lines.some((l) => l.includes("the development key")));

    files.JWT_HS256_KEYS = new Deno.errors.NotFound("swapping");
    assert.deepEqual(await reloader.check(), []);
    assert.equal(applied.length, 1);
    assert.ok(
      !lines.some((l) => l.includes("reloader-secret") || l.includes("k3:short")),
      "no value logged",
    );
  } finally {
    await reloader.stop();
  }
});

Deno.test("startSecretReloader() polls on its own every intervalMs", async () => {
  let text = "first-unsubscribe-secret-0123456789";
  const applied = Promise.withResolvers<unknown>();
  const reloader = startSecretReloader({
    read: () => Promise.resolve(text),
    initial: { UNSUBSCRIBE_SECRET: text },
    apply: (_, value) => applied.resolve(value),
    intervalMs: 20,
    appEnv: "test",
    log: memoryLog().log,
  });
  try {
    text = "second-unsubscribe-secret-0123456789\nfirst-unsubscribe-secret-0123456789";
    assert.deepEqual(await applied.promise, [
      "second-unsubscribe-secret-0123456789",
      "first-unsubscribe-secret-0123456789",
    ]);
  } finally {
    await reloader.stop();
  }
});
