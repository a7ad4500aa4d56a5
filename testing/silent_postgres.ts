/**
 * A fault proxy in front of the test stack's Neon proxy, for tests of a
 * Postgres connection that silently stops answering (`proxy.setFault({ kind:
 * "blackhole" })`), with the settings that make such a write fail fast: one
 * pooled connection and a 300 ms write deadline (`DB_WRITE_TIMEOUT_MS`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type FaultProxy, startFaultProxy } from "../dev/chaos/fault_proxy.ts";
import type { TestStack } from "./stack.ts";

/** The proxy (`await using` closes it) and the environment that routes Postgres through it. */
export async function silentPostgres(
  stack: TestStack,
): Promise<{ proxy: FaultProxy; env: Record<string, string> }> {
  const wsProxy = stack.settings.database.wsProxy;
  assert.ok(wsProxy, "the test stack serves Postgres through dev/neon_proxy.ts");
  const [address, ...path] = wsProxy.split("/");
  const proxy = await startFaultProxy({ upstreamPort: Number(address!.split(":")[1]) });
  return {
    proxy,
    env: {
      NEON_WS_PROXY: `127.0.0.1:${proxy.port}/${path.join("/")}`,
      DB_POOL_MAX: "1",
      DB_WRITE_TIMEOUT_MS: "300",
    },
  };
}
