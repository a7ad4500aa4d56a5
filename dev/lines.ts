/**
 * Line splitting for child-process output (servers, test runs, app
 * processes): every consumer of a child's stdout/stderr reads it this way.
 *
 * @module
 */

/**
 * Calls `onLine` for each line of `stream` (UTF-8, `\n`-separated, without
 * the newline), including a last line that has no newline. Resolves when the
 * stream ends.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  for await (const chunk of stream) {
    partial += decoder.decode(chunk, { stream: true });
    const lines = partial.split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  }
  partial += decoder.decode();
  if (partial) onLine(partial);
}
