import assert from "node:assert/strict";
import { readCapped } from "./read_capped.ts";

function chunked(
  ...parts: string[]
): { stream: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  const encoder = new TextEncoder();
  let i = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < parts.length) controller.enqueue(encoder.encode(parts[i++]!));
      else controller.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  return { stream, cancelled: () => cancelled };
}

Deno.test("readCapped() joins every chunk of a stream within the cap", async () => {
  const { stream } = chunked("ab", "cd", "e");
  const bytes = await readCapped(stream, 5);
  assert.equal(new TextDecoder().decode(bytes!), "abcde");
});

Deno.test("readCapped() answers null and cancels the stream once it passes the cap", async () => {
  const { stream, cancelled } = chunked("abc", "def", "never read");
  assert.equal(await readCapped(stream, 5), null);
  assert.ok(cancelled());
});

Deno.test("readCapped() reads a null stream as no bytes", async () => {
  assert.deepEqual(await readCapped(null, 0), new Uint8Array(0));
});

Deno.test("readCapped() leaves a tee branch's cancel unawaited when asked to", async () => {
  const { stream } = chunked("abcdef", "ghi");
  const [mine, theirs] = stream.tee();
  // The other branch is not read yet: an awaited cancel of `mine` would hang.
  assert.equal(await readCapped(mine, 3, { awaitCancel: false }), null);
  const rest = await readCapped(theirs, 100);
  assert.equal(new TextDecoder().decode(rest!), "abcdefghi");
});
