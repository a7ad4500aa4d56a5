/**
 * The breakers' Redis keys; built in shared/redis/keys.ts with every other key.
 *
 * @module
 */
export { type BreakerKeys, breakerKeys } from "../redis/keys.ts";
