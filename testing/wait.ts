/**
 * Polling waits for tests: the one place a test waits for a condition that
 * another task, process or server makes true. Both poll (no timing is
 * asserted) and fail with what they waited for, so a timeout reads as a
 * sentence.
 *
 * @module
 */

/** Options of {@linkcode waitUntil} and {@linkcode waitForValue}. */
export interface WaitOptions {
  /** How long to wait before failing. @default 5000 */
  timeoutMs?: number;
  /** Pause between two checks. @default 5 */
  everyMs?: number;
  /** What is waited for, named in the timeout error. @default "condition" */
  what?: string;
  /** More context for the timeout error (e.g. the last state seen). */
  detail?: () => string | Promise<string>;
}

/** Error thrown when a wait runs out of time. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
}

/**
 * Polls `read` every `everyMs` until it returns something other than
 * `undefined`, and returns that; throws {@linkcode WaitTimeoutError} after
 * `timeoutMs`.
 */
export async function waitForValue<T>(
  read: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 5000, everyMs = 5, what = "condition" } = options;
  const deadline = performance.now() + timeoutMs;
  while (true) {
    const value = await read();
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      const detail = options.detail ? `: ${await options.detail()}` : "";
      throw new WaitTimeoutError(`Timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Polls `check` every `everyMs` until it is true; throws {@linkcode WaitTimeoutError} after `timeoutMs`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  options: WaitOptions = {},
): Promise<void> {
  await waitForValue(async () => (await check()) ? true : undefined, options);
}
