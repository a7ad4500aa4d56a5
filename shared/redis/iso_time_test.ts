import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import isoTime from "./scripts/includes/iso_time.lua" with { type: "text" };

// The stack holds a Neon Pool (deps), whose socket ops outlive each test.
const opts = noSanitizers;

Deno.test({
  name: "iso_ms() in Lua writes epoch ms exactly as Date.toISOString() does",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const { redis } = stack.makeDeps();
    const samples = [
      0,
      951_782_400_000, // 2000-02-29, a leap day of a century leap year
      4_107_542_399_999, // 2100-02-28T23:59:59.999Z (2100 is no leap year)
      Date.UTC(2026, 11, 31, 23, 59, 59, 5),
      Date.UTC(2024, 1, 29, 12, 0, 0, 120),
      1_796_655_318_061,
    ];
    for (let i = 0; i < 200; i++) samples.push(Math.floor(Math.random() * 8_000_000_000_000));
    const out = await redis.eval<[], string[]>(
      `${isoTime}
       local out = {}
       for i, ms in ipairs(ARGV) do out[i] = iso_ms(tonumber(ms)) end
       return out`,
      [],
      samples.map(String) as [],
    );
    assert.deepEqual(out, samples.map((ms) => new Date(ms).toISOString()));
  },
});
