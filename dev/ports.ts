/**
 * Free loopback ports for throwaway servers.
 *
 * @module
 */

/**
 * Asks the kernel for a free TCP port on 127.0.0.1. There is a window between
 * closing the probe listener and the server binding it; callers that start a
 * server retry on "address in use" (see `startWithPortRetry`).
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Runs `start(port)` with fresh free ports until it does not fail with "address in use". */
export async function startWithPortRetry<T>(
  start: (port: number) => Promise<T>,
  attempts = 5,
): Promise<T> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await start(freePort());
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse) && !/address already in use/i.test(String(err))) {
        throw err;
      }
      lastError = err;
    }
  }
  throw new Error(`Cannot find a free port after ${attempts} attempts`, { cause: lastError });
}
