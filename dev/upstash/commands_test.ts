import assert from "node:assert/strict";
import { parseCommand, parseCommandList, parseJson } from "./commands.ts";

Deno.test("parseCommand() converts numbers, booleans and null to Redis strings", () => {
  assert.deepEqual(parseCommand(["set", "k", 1.5, true, false, null, 1e21, -0]), {
    name: "SET",
    args: ["set", "k", "1.5", "true", "false", "", "1e+21", "0"],
  });
});

Deno.test("parseCommand() rejects shapes the SDK never sends", () => {
  for (
    const body of [[], {}, "GET", null, [1, "a"], [""], ["SET", "k", ["v"]], ["SET", "k", { v: 1 }]]
  ) {
    assert.throws(
      () => parseCommand(body),
      { name: "BridgeRequestError", status: 400 },
      JSON.stringify(body),
    );
  }
});

Deno.test("parseCommand() refuses connection-state and blocking commands", () => {
  for (
    const command of [
      ["select", "1"],
      ["MULTI"],
      ["Subscribe", "x"],
      ["CLIENT", "KILL", "ID", "1"],
      ["CLIENT"],
      ["BRPOP", "l", 0],
      ["XREADGROUP", "GROUP", "g", "c", "BLOCK", 0, "STREAMS", "s", ">"],
    ]
  ) {
    assert.throws(() => parseCommand(command), { name: "BridgeRequestError", status: 400 });
  }
  // Read-only CLIENT subcommands, non-blocking reads, "block" as a group name.
  assert.equal(parseCommand(["client", "list"]).name, "CLIENT");
  assert.equal(parseCommand(["XREAD", "COUNT", 1, "STREAMS", "block", "0"]).name, "XREAD");
  assert.equal(
    parseCommand(["XREADGROUP", "GROUP", "block", "c", "STREAMS", "s", ">"]).name,
    "XREADGROUP",
  );
});

Deno.test("parseCommandList() names the failing command", () => {
  assert.equal(parseCommandList([["GET", "a"], ["INCR", "b"]]).length, 2);
  assert.throws(() => parseCommandList([]), { status: 400 });
  assert.throws(() => parseCommandList(["GET", "a"]), {
    message: /command 1 must be a non-empty JSON array/,
  });
  assert.throws(() => parseCommandList([["GET", "a"], ["WATCH", "k"]]), { message: /'WATCH'/ });
});

Deno.test("parseJson() turns syntax errors into 400s with the cause", () => {
  assert.deepEqual(parseJson('["PING"]'), ["PING"]);
  assert.throws(() => parseJson("{"), (err: Error) => {
    assert.equal(err.name, "BridgeRequestError");
    assert.ok(err.cause instanceof SyntaxError);
    return true;
  });
});
