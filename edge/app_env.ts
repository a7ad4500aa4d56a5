/**
 * The Hono environment of the edge application: the per-request variables
 * handlers read with `c.get()`. Its own module, importing nothing that leads
 * back to `app.ts`, so that routes and middleware can name the type without
 * an import cycle through the module that mounts them.
 *
 * @module
 */
import type { Logger } from "../shared/log.ts";
import type { Principal } from "./auth/principal.ts";
import type { ClientAddressVariables } from "./client_address.ts";
import type { KeyedEnqueueOutcome, KeyTaken, StoredResponse } from "./idempotency/store.ts";

/**
 * What the idempotency middleware hands a route that writes the key's record
 * in its effect's script (its `recordWithEffect` option; `POST /v1/tasks`).
 */
export interface IdempotencyRecord {
  /**
   * Enqueues ONE task (`call`: shared/queue/queue.ts `enqueueCall`) and stores
   * `response` (the answer naming that task) under the key, in one script.
   */
  enqueue(
    call: { keys: string[]; args: (string | number)[] },
    response: Omit<StoredResponse, "taskId">,
  ): Promise<KeyedEnqueueOutcome>;
  /** The answer when `enqueue` found the key taken: a replay, 409 or 422. */
  answer(outcome: KeyTaken): Promise<Response>;
}

/** Context variables the idempotency middleware reads; part of {@linkcode AppEnv}. */
export interface IdempotencyVariables {
  /** Set by a handler that answers 202 for a queued task whose body carries no `task_id`. */
  idempotencyTaskId?: string;
  /** Set by the idempotency middleware for a route that writes its own record. */
  idempotencyRecord?: IdempotencyRecord;
}

/** Per-request variables handlers can read with `c.get()`. */
export type AppEnv = {
  Variables:
    & {
      requestId: string;
      /** Logger carrying this request's id (and `user.id` once authenticated). */
      log: Logger;
      /** Set by the authentication middleware on /v1 routes. */
      principal: Principal;
    }
    & IdempotencyVariables
    & ClientAddressVariables;
};
