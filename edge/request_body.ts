/**
 * Reading a request body that may no longer be readable. `Deno.serve` fails
 * the read of a body whose bytes have not all arrived with
 * `BadResource: Cannot read body as underlying resource unavailable` when the
 * client closed its side of the connection, and also when the server began its
 * graceful shutdown while the body was still in flight: then the client is
 * still there and waits for an answer (found by `deno task chaos`,
 * docs/reliability.md). Nothing of the request has run at that point, so the
 * answer is 503 `request-body-unreadable` with `Retry-After`: the client may
 * send it again (with the same Idempotency-Key) to this or another edge. It is
 * not the opaque 500 of an unhandled error and no breaker counts it.
 *
 * @module
 */
import { AppError } from "../shared/errors.ts";

/** Seconds a client waits before it sends an unread request again. */
const RETRY_AFTER_S = 1;

/** The request's body could not be read: its connection closed, or the server is stopping. */
export class RequestBodyUnreadableError extends AppError {
  override name = "RequestBodyUnreadableError";
  constructor(options: { cause: unknown }) {
    super("request-body-unreadable", 503, "The request body could not be read; send it again", {
      cause: options.cause,
      details: { retry_after: RETRY_AFTER_S },
    });
  }
}

/**
 * Runs `read` (a read of the request body); the runtime's failure to read a
 * body whose connection is gone is thrown as
 * {@linkcode RequestBodyUnreadableError}, anything else unchanged.
 */
export async function readingBody<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (err instanceof Deno.errors.BadResource) {
      throw new RequestBodyUnreadableError({ cause: err });
    }
    throw err;
  }
}
