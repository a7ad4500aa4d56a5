import assert from "node:assert/strict";
import { checkTopic } from "./feed_check.ts";
import { applyFrame, lastOffset, type TopicLog } from "./follower.ts";

const published = ["1-0", "2-0", "3-0", "4-0", "5-0", "6-0", "7-0"];

Deno.test("checkTopic() passes a follower that saw every message from its start to its newest once, in order", () => {
  const log: TopicLog = { start: "2-0", offsets: ["3-0", "4-0", "5-0"], gaps: [] };
  const f = checkTopic(log, published);
  assert.deepEqual(f.lost, []);
  assert.deepEqual(f.duplicated, []);
  assert.equal(f.out_of_order, 0);
  assert.equal(f.received, 3);
});

Deno.test("checkTopic() names a message missed between two received ones as lost", () => {
  const log: TopicLog = { start: "1-0", offsets: ["2-0", "4-0", "5-0"], gaps: [] };
  assert.deepEqual(checkTopic(log, published).lost, ["3-0"]);
});

Deno.test("checkTopic() names repeats and counts reordering", () => {
  const log: TopicLog = { start: "1-0", offsets: ["2-0", "4-0", "3-0", "4-0", "5-0"], gaps: [] };
  const f = checkTopic(log, published);
  assert.deepEqual(f.duplicated, ["4-0"]);
  assert.equal(f.out_of_order, 1);
  assert.deepEqual(f.lost, []);
});

Deno.test("checkTopic() excuses only the messages inside an announced gap", () => {
  // Resubscribed after 2-0 with recovered: false, next message received 5-0.
  const log: TopicLog = { start: "1-0", offsets: ["2-0", "5-0", "7-0"], gaps: ["2-0"] };
  const f = checkTopic(log, published);
  assert.equal(f.excused, 2);
  assert.equal(f.gaps_announced, 1);
  assert.deepEqual(f.lost, ["6-0"], "the gap ends at the first message received after it");
});

Deno.test("applyFrame() records the first subscription's start, later unrecovered ones as gaps", () => {
  const logs: Record<string, TopicLog> = { tasks: { start: null, offsets: [], gaps: [] } };
  applyFrame(logs, { type: "subscribed", topic: "tasks", recovered: false, offset: "1-0" }, {});
  applyFrame(logs, { type: "message", topic: "tasks", offset: "2-0" }, {});
  applyFrame(logs, { type: "message", topic: "other", offset: "3-0" }, {});
  assert.equal(lastOffset(logs.tasks!), "2-0");
  applyFrame(logs, { type: "subscribed", topic: "tasks", recovered: true, offset: "9-0" }, {
    tasks: "2-0",
  });
  assert.deepEqual(logs.tasks!.gaps, []);
  applyFrame(logs, { type: "subscribed", topic: "tasks", recovered: false, offset: "9-0" }, {
    tasks: "2-0",
  });
  assert.deepEqual(logs.tasks, { start: "1-0", offsets: ["2-0"], gaps: ["2-0"] });
});
