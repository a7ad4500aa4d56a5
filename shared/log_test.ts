import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

Deno.test("createLogger() writes one JSON line per event with child fields", () => {
  const lines: string[] = [];
  const log = createLogger({
    level: "info",
    fields: { service: "edge" },
    write: (l) => lines.push(l),
    now: () => 0,
  });
  log.debug("hidden");
  log.child({ request_id: "r1" }).warn("slow", { ms: 12 });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]!), {
    time: "1970-01-01T00:00:00.000Z",
    level: "warn",
    msg: "slow",
    service: "edge",
    request_id: "r1",
    ms: 12,
  });
});

Deno.test("createLogger() serialises errors with their cause chain", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), now: () => 0 });
  const err = new Error("outer", { cause: Object.assign(new Error("inner"), { code: "ECONN" }) });
  log.error("failed", { err });
  assert.deepEqual(JSON.parse(lines[0]!).err, {
    name: "Error",
    message: "outer",
    cause: { name: "Error", message: "inner", code: "ECONN" },
  });
});
