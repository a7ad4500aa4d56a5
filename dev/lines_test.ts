import assert from "node:assert/strict";
import { forEachLine } from "./lines.ts";

Deno.test("forEachLine() joins lines split across chunks and keeps the last unterminated one", async () => {
  const bytes = new TextEncoder().encode("héllo\nwor");
  // Split inside the two-byte "é" too.
  const chunks = [bytes.slice(0, 2), bytes.slice(2), new TextEncoder().encode("ld\n\nend")];
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const chunk of chunks) c.enqueue(chunk);
      c.close();
    },
  });
  const lines: string[] = [];
  await forEachLine(stream, (l) => lines.push(l));
  assert.deepEqual(lines, ["héllo", "world", "", "end"]);
});
