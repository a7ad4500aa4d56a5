import assert from "node:assert/strict";
import { compareOffsets, maySubscribe, parseTopic } from "./topics.ts";

Deno.test("parseTopic() accepts topics and topic:key, nothing else", () => {
  assert.deepEqual(parseTopic("tasks"), { topic: "tasks", key: null, name: "tasks" });
  assert.deepEqual(parseTopic("tasks:t-1.x"), {
    topic: "tasks",
    key: "t-1.x",
    name: "tasks:t-1.x",
  });
  for (
    const bad of [
      "",
      "task",
      "tasks:",
      "tasks:a b",
      "tasks:a:b",
      "TASKS",
      `tasks:${"k".repeat(129)}`,
    ]
  ) {
    assert.equal(parseTopic(bad), null, bad);
  }
});

Deno.test("dlq is for admins and service accounts, breakers for every dashboard role too; tasks and leads follow the API's read rule", () => {
  const viewer = { kind: "user" as const, sub: "v", roles: ["viewer"] };
  const admin = { kind: "user" as const, sub: "a", roles: ["admin"] };
  const minerva = { kind: "service" as const, sub: "sa:minerva", roles: [] };
  assert.equal(maySubscribe(viewer, "broadcast"), true);
  const asked: string[] = [];
  const reads = (allowed: boolean) => (path: string) => (asked.push(path), allowed);
  for (const topic of ["tasks", "leads"] as const) {
    assert.equal(maySubscribe(viewer, topic, reads(true)), true);
    assert.equal(maySubscribe(admin, topic, reads(false)), false);
    assert.equal(maySubscribe(admin, topic), false, "no read rule given: denied");
  }
  assert.deepEqual(asked, ["/v1/tasks/:id", "/v1/tasks/:id", "/v1/leads/:id", "/v1/leads/:id"]);
  assert.equal(maySubscribe(viewer, "dlq"), false);
  assert.equal(maySubscribe(viewer, "breakers"), true);
  assert.equal(maySubscribe({ kind: "user", sub: "n", roles: [] }, "breakers"), false);
  for (const topic of ["dlq", "breakers"] as const) {
    assert.equal(maySubscribe(admin, topic), true);
    assert.equal(maySubscribe(minerva, topic), true);
    // "Any service" is never a grant: an unlisted service is denied.
    assert.equal(maySubscribe({ kind: "service", sub: "sa:billing", roles: [] }, topic), false);
  }
});

Deno.test("compareOffsets() orders by time, then sequence, numerically", () => {
  assert.ok(compareOffsets("10-2", "9-5") > 0);
  assert.ok(compareOffsets("10-9", "10-10") < 0);
  assert.equal(compareOffsets("0-0", "0-0"), 0);
  assert.equal(compareOffsets("1733570000000-7", "1733570000000-7"), 0);
  assert.ok(compareOffsets("1733570000000-0", "999999999999-99") > 0, "more digits is later");
  assert.ok(compareOffsets("1733570000001-0", "1733570000000-123") > 0);
  assert.ok(compareOffsets("1733570000000-99", "1733570000000-100") < 0);
  assert.ok(
    compareOffsets("999999999999999-999999999999999", "999999999999999-999999999999998") > 0,
  );
});
