import assert from "node:assert/strict";
import { SendQueue } from "./send_queue.ts";

function fakeSocket() {
  return {
    readyState: 1,
    bufferedAmount: 0,
    sent: [] as string[],
    send(d: string) {
      this.sent.push(d);
    },
  };
}

Deno.test("SendQueue sends at once while the socket buffer is low, queues above high water", () => {
  const socket = fakeSocket();
  let overflows = 0;
  const q = new SendQueue(socket, {
    highWaterBytes: 100,
    maxMessages: 3,
    onOverflow: () => overflows++,
  });
  assert.equal(q.push("a"), true);
  socket.bufferedAmount = 100;
  assert.equal(q.push("b"), true);
  assert.equal(q.push("c"), true);
  assert.deepEqual(socket.sent, ["a"]);
  assert.equal(q.length, 2);
  assert.equal(q.flush(), true);
  socket.bufferedAmount = 0;
  assert.equal(q.flush(), false);
  assert.deepEqual(socket.sent, ["a", "b", "c"]);
  assert.equal(overflows, 0);
});

Deno.test("SendQueue overflows once past its frame or byte limit and then drops everything", () => {
  const socket = fakeSocket();
  socket.bufferedAmount = 1_000;
  let overflows = 0;
  const byCount = new SendQueue(socket, {
    highWaterBytes: 10,
    maxMessages: 2,
    onOverflow: () => overflows++,
  });
  assert.equal(byCount.push("1"), true);
  assert.equal(byCount.push("2"), true);
  assert.equal(byCount.push("3"), false);
  assert.equal(byCount.push("4"), false);
  assert.equal(overflows, 1);
  assert.equal(byCount.length, 0);
  assert.equal(byCount.overflowed, true);

  const byBytes = new SendQueue(socket, {
    highWaterBytes: 10,
    maxBytes: 5,
    onOverflow: () => overflows++,
  });
  assert.equal(byBytes.push("abc"), true);
  assert.equal(byBytes.push("def"), false);
  assert.equal(overflows, 2);
  assert.deepEqual(socket.sent, []);
});

Deno.test("SendQueue sends nothing to a socket that is no longer open", () => {
  const socket = fakeSocket();
  socket.readyState = 3;
  const q = new SendQueue(socket, { onOverflow: () => {} });
  assert.equal(q.push("x"), false);
  assert.deepEqual(socket.sent, []);
});
