import assert from "node:assert/strict";
import { SCRIPT_CODES } from "./script_codes.ts";

const ROOT = new URL("../../", import.meta.url);

/** The `--[[ … ]]` contract header of a Lua script. */
function header(source: string): string {
  const start = source.indexOf("--[[");
  const end = source.indexOf("]]", start);
  assert.ok(start >= 0 && end > start, "script has a --[[ … ]] header");
  return source.slice(start, end);
}

Deno.test("each named script code is documented in its script's header", async () => {
  for (const [name, { file, codes }] of Object.entries(SCRIPT_CODES)) {
    const text = header(await Deno.readTextFile(new URL(file, ROOT)));
    for (const [label, value] of Object.entries(codes)) {
      const mentioned = new RegExp(`(^|[^\\w.-])${value}(?![\\w.])`).test(text);
      assert.ok(mentioned, `${name}.${label} = ${value} is not in the header of ${file}`);
    }
  }
});

Deno.test("a script's codes are distinct, so a reply maps to one name", () => {
  for (const [name, { codes }] of Object.entries(SCRIPT_CODES)) {
    const values = Object.values(codes);
    assert.equal(new Set(values).size, values.length, `${name} reuses a code`);
  }
});
