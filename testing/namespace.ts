/**
 * Key namespaces for tests: suites share one Redis (the test stack's), so
 * each queue, breaker registry or live feed under test gets a fresh
 * namespace and never sees another suite's keys; rows in the shared database
 * carry a run tag for the same reason.
 *
 * @module
 */

/** 8 random hex digits: a tag unique to one run, for names, cities and database names. */
export function runTag(): string {
  return crypto.randomUUID().slice(0, 8);
}

/** A fresh namespace: `prefix` and a {@linkcode runTag}. @default prefix "t" */
export function testNamespace(prefix = "t"): string {
  return `${prefix}${runTag()}`;
}
