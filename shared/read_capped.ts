/**
 * Bounded reads of a byte stream: the edge and the workers read bodies they do
 * not control (requests to fingerprint, responses to store for replay,
 * upstream answers to cache, replies of outside services), and none of them
 * may hold more than a set number of bytes of one.
 *
 * @module
 */

/** Options of {@linkcode readCapped}. */
export interface ReadCappedOptions {
  /**
   * Wait for the cancel of a stream that went over the cap. False for a tee
   * branch, whose cancel settles only once the other branch (the one a client
   * is reading) is done too.
   * @default true
   */
  awaitCancel?: boolean;
}

/**
 * Reads `stream` to its end, counting as it goes, and returns its bytes; null
 * as soon as it exceeds `maxBytes` (the stream is cancelled then, so no more
 * than `maxBytes` is ever held). A null stream reads as no bytes.
 */
export async function readCapped(
  stream: ReadableStream<Uint8Array> | null,
  maxBytes: number,
  options: ReadCappedOptions = {},
): Promise<Uint8Array | null> {
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      const cancelled = reader.cancel().catch(() => {});
      if (options.awaitCancel ?? true) await cancelled;
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
