/**
 * Content hashes shared by the queue (derived idempotency keys), the edge
 * (Idempotency-Key records) and migrations (ledger checksums).
 *
 * @module
 */
import { createHash } from "node:crypto";

/**
 * Hex SHA-256 of a string (UTF-8). `node:crypto` rather than
 * `crypto.subtle.digest`: for short texts the Web Crypto op costs about twenty
 * times the CPU of `createHash` per call in Deno 2.9, which bounded
 * `enqueueMany` (docs/benchmarks.md, design measurements).
 */
export function sha256Hex(text: string): Promise<string> {
  return Promise.resolve(createHash("sha256").update(text, "utf8").digest("hex"));
}
