import assert from "node:assert/strict";
import { outboxRecipients } from "./effects_check.ts";

Deno.test("outboxRecipients() counts .eml files by their To header, ignoring temp files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "outbox_test_" });
  try {
    const eml = (to: string) =>
      `From: a@b.example\r\nTo: ${to}\r\nSubject: x\r\n\r\nTo: body@x.example\r\n`;
    await Deno.writeTextFile(`${dir}/one.eml`, eml("Pat <Pat@Chaos.Example.com>"));
    await Deno.writeTextFile(`${dir}/two.eml`, eml("pat@chaos.example.com"));
    await Deno.writeTextFile(`${dir}/three.eml`, eml("kim@chaos.example.com"));
    await Deno.writeTextFile(`${dir}/.four.eml.tmp`, eml("kim@chaos.example.com"));
    const counts = await outboxRecipients(dir);
    assert.deepEqual(
      Object.fromEntries(counts),
      { "pat@chaos.example.com": 2, "kim@chaos.example.com": 1 },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
