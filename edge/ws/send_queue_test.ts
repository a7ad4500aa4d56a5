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

Deno.test("SendQueue reports every frame that never reaches the socket, with why", () => {
  const socket = fakeSocket();
  const drops: Record<string, number> = { closed: 0, slow_consumer: 0 };
  const onDrop = (reason: string, frames: number) => drops[reason]! += frames;

  // Queued behind a full buffer, then the socket closes: the flush drops the
  // frame it tried, the connection's end discards the rest.
  const q = new SendQueue(socket, { highWaterBytes: 10, onOverflow: () => {}, onDrop });
  socket.bufferedAmount = 100;
  for (const f of ["a", "b", "c"]) assert.equal(q.push(f), true);
  socket.bufferedAmount = 0;
  socket.readyState = 2;
  assert.equal(q.flush(), false);
  assert.deepEqual(drops, { closed: 1, slow_consumer: 0 });
  assert.equal(q.discard(), 2);
  assert.deepEqual(drops, { closed: 3, slow_consumer: 0 });
  assert.equal(q.discard(), 0, "nothing is counted twice");
  // A frame due on the closed socket.
  assert.equal(q.push("d"), false);
  assert.deepEqual(drops, { closed: 4, slow_consumer: 0 });

  // A send that throws (the socket closing under us) is a drop too.
  const throwing = {
    ...fakeSocket(),
    send: () => {
      throw new Error("closing");
    },
  };
  const t = new SendQueue(throwing, { onOverflow: () => {}, onDrop });
  assert.equal(t.push("e"), false);
  assert.deepEqual(drops, { closed: 5, slow_consumer: 0 });

  // The overflow discards everything queued, the overflowing frame included.
  const slow = fakeSocket();
  slow.bufferedAmount = 1_000;
  const s = new SendQueue(slow, {
    highWaterBytes: 10,
    maxMessages: 2,
    onOverflow: () => {},
    onDrop,
  });
  assert.equal(s.push("1"), true);
  assert.equal(s.push("2"), true);
  assert.equal(s.push("3"), false);
  assert.deepEqual(drops, { closed: 5, slow_consumer: 3 });
  assert.equal(s.push("4"), false);
  assert.deepEqual(drops, { closed: 5, slow_consumer: 4 });
  assert.deepEqual(slow.sent, []);
});
