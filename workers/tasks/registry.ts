/**
 * Task type → handler, one file per task type in this folder. Every catalog
 * type a worker should run is listed here; the runner refuses handlers that
 * have no catalog entry.
 *
 * @module
 */
import type { Handler } from "../runner.ts";
import * as noop from "./noop.ts";

/** The handlers of the platform's task types. */
export const HANDLERS: Record<string, Handler> = {
  noop: noop.handle,
};
