import assert from "node:assert/strict";
import { isProblem, messageFrame, parseClientFrame, protocolJsonSchema } from "./protocol.ts";

Deno.test("parseClientFrame() accepts the four client frames", () => {
  assert.deepEqual(parseClientFrame('{"type":"subscribe","topics":["tasks"],"since":"1-0"}'), {
    type: "subscribe",
    topics: ["tasks"],
    since: "1-0",
  });
  assert.deepEqual(parseClientFrame('{"type":"ping","id":"x"}'), { type: "ping", id: "x" });
  assert.equal(
    (parseClientFrame('{"type":"reauth","token":"a.b.c"}') as { type: string }).type,
    "reauth",
  );
  const per = parseClientFrame(
    '{"type":"subscribe","topics":["tasks","leads"],"since":{"tasks":"5-1"}}',
  );
  assert.ok(!isProblem(per));
});

Deno.test("parseClientFrame() names what is wrong with a bad frame", () => {
  const cases: [string, string][] = [
    ["{nope", "bad-json"],
    ["[1]", "bad-frame"],
    ['"x"', "bad-frame"],
    ['{"type":"shout"}', "unknown-type"],
    ["{}", "unknown-type"],
    ['{"type":"subscribe","topics":[]}', "bad-frame"],
    ['{"type":"subscribe","topics":["tasks"],"since":"yesterday"}', "bad-frame"],
    ['{"type":"subscribe","topics":["tasks"],"extra":1}', "bad-frame"],
    ['{"type":"reauth"}', "bad-frame"],
  ];
  for (const [text, code] of cases) {
    const out = parseClientFrame(text);
    assert.ok(isProblem(out), text);
    assert.equal(out.code, code, text);
  }
});

Deno.test("protocolJsonSchema() documents client and server frames", () => {
  const schema = protocolJsonSchema() as {
    $defs: { client: { oneOf: unknown[] }; server: { oneOf: unknown[] } };
  };
  assert.equal(schema.$defs.client.oneOf.length, 4);
  assert.equal(schema.$defs.server.oneOf.length, 8);
  assert.match(JSON.stringify(schema), /4008 slowConsumer/);
});

Deno.test("messageFrame() embeds the data verbatim, with ts in ISO 8601", () => {
  const frame = messageFrame({
    topic: "tasks",
    key: "t1",
    offset: "5-0",
    ts: 5,
    data: '{"a":[1]}',
  });
  assert.deepEqual(JSON.parse(frame), {
    type: "message",
    topic: "tasks",
    key: "t1",
    offset: "5-0",
    ts: "1970-01-01T00:00:00.005Z",
    data: { a: [1] },
  });
});
