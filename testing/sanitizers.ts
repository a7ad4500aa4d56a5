/**
 * Test options for suites that hold clients whose teardown finishes
 * asynchronously: the Neon Pool reports idle errors after `end()`
 * (docs/reference/neon-local.md §5) and the Upstash SDK's subscription streams
 * settle a tick after unsubscribe, which Deno's op and resource sanitizers
 * report as leaks. Spread into `Deno.test({ ...noSanitizers, … })` or pass as
 * the options argument; a suite that uses it says which of these it holds.
 *
 * @module
 */

/** Turns off Deno's op and resource sanitizers for one test. */
export const noSanitizers = { sanitizeOps: false, sanitizeResources: false };
