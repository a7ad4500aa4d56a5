/**
 * `stages(list, onError)`: middleware run in order as ONE layer of Hono's
 * chain, each with the semantics Hono gives a layer of its own: a stage that
 * returns a Response without calling `next` answers the request, and an Error
 * a stage throws becomes `onError`'s response right there (so the stages
 * before it see a response, as they would under Hono).
 *
 * The edge uses it to mount the `/v1` chain twice and pick one per request
 * (edge/gateway.ts): a request with no body skips the stages that only look
 * at bodies, instead of passing through each as a no-op layer.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from "hono";

/** The app's error handler (`app.errorHandler`). */
export type StageErrorHandler = (err: Error, c: Context) => Response | Promise<Response>;

/** Runs `list` as one middleware. */
export function stages(
  list: readonly MiddlewareHandler[],
  onError: StageErrorHandler,
): MiddlewareHandler {
  return async function stages(c, next) {
    const run = async (i: number): Promise<void> => {
      let res: Response | void;
      let isError = false;
      try {
        res = i < list.length ? await list[i]!(c, () => run(i + 1)) : await next();
      } catch (err) {
        if (!(err instanceof Error)) throw err;
        c.error = err;
        res = await onError(err, c);
        isError = true;
      }
      if (res instanceof Response && (!c.finalized || isError)) c.res = res;
    };
    await run(0);
  };
}
