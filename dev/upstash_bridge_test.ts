/**
 * Conformance groups A (transport, auth), B (single commands) and C
 * (/pipeline) of docs/reference/upstash-rest-protocol.md §13, as raw HTTP against a bridge in
 * front of a real redis-server, plus the same ground through the real
 * `@upstash/redis` client. D and G (transactions, Redis going away) live in
 * `dev/upstash/redis_link_test.ts`, E in `scripts_test.ts`, F in `sse_test.ts`.
 */
import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import {
  isErrorBody,
  requestHeaders,
  startBridgeFixture,
  TOKEN,
} from "../testing/upstash_bridge.ts";
import { startUpstashBridge } from "./upstash_bridge.ts";

const WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value";

Deno.test("A: transport and authentication follow the Upstash contract", async (t) => {
  await using fx = await startBridgeFixture();

  await t.step("A1 PING without upstash-encoding answers PONG as text", async () => {
    const res = await fx.post("/", ["PING"], { raw: true });
    assert.equal(res.status, 200);
    assert.equal(res.contentType, "application/json");
    assert.deepEqual(res.body, { result: "PONG" });
  });

  await t.step("A2 PING in base64 mode answers base64 of PONG", async () => {
    const res = await fx.post("/", ["PING"]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { result: "UE9ORw==" });
  });

  await t.step(
    "A3 a missing authorization header is a 401 JSON error on every endpoint",
    async () => {
      for (const path of ["/", "/pipeline", "/multi-exec", "/subscribe/x", "/psubscribe/x*"]) {
        const body = path === "/" ? ["PING"] : path.includes("subscribe") ? [] : [["PING"]];
        const res = await fx.post(path, body, { headers: { authorization: null } });
        assert.equal(res.status, 401, path);
        assert.equal(res.contentType, "application/json", path);
        assert.ok(isErrorBody(res.body), `${path}: ${res.text}`);
      }
    },
  );

  await t.step("A4 a wrong bearer token is a 401 JSON error", async () => {
    for (const authorization of ["Bearer wrong", "Bearer undefined", `Basic ${TOKEN}`, TOKEN]) {
      const res = await fx.post("/", ["PING"], { headers: { authorization } });
      assert.equal(res.status, 401, authorization);
      assert.ok(isErrorBody(res.body), res.text);
    }
  });

  await t.step("A5 an empty sync token and the telemetry headers are accepted", async () => {
    const res = await fx.post("/", ["PING"], {
      headers: {
        "upstash-sync-token": "",
        "upstash-telemetry-runtime": "node@v26.3.0",
        "upstash-telemetry-platform": "unknown",
        "upstash-telemetry-sdk": "@upstash/redis@v1.39.0,@upstash/ratelimit@2.2.0",
        "upstash-telemetry-retry": "1",
      },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { result: "UE9ORw==" });
  });

  await t.step("A6 malformed bodies are 400 JSON errors", async () => {
    const bodies = [
      "not json",
      "{",
      '{"a":1}',
      '"PING"',
      "42",
      "[]",
      '[""]',
      "[1]",
      '["SET","k",["v"]]',
      '["SET","k",{"v":1}]',
    ];
    for (const body of bodies) {
      const res = await fx.post("/", body);
      assert.equal(res.status, 400, body);
      assert.ok(isErrorBody(res.body), `${body}: ${res.text}`);
    }
  });

  await t.step("A7 an unknown path is a JSON 4xx error", async () => {
    for (const path of ["/nope/x", "/pipeline/x", "/get/foo", "/subscribe/"]) {
      const res = await fx.post(path, ["PING"]);
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`);
      assert.ok(isErrorBody(res.body), `${path}: ${res.text}`);
    }
    // Other paths are the path form of a command (dev/upstash/path_form.ts):
    // an unknown one is Redis's own error, as on Upstash.
    const unknown = await fx.post("/nope/x", ["PING"]);
    assert.equal(unknown.status, 400);
    assert.match(String((unknown.body as { error: string }).error), /unknown command/i);
  });

  await t.step("methods other than POST are 405 JSON errors", async () => {
    for (const method of ["GET", "PUT", "DELETE", "PATCH"]) {
      const res = await fetch(fx.bridge.url + "/", {
        method,
        headers: requestHeaders(),
        body: method === "GET" ? undefined : '["PING"]',
      });
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.get("allow"), "POST");
      assert.ok(isErrorBody(await res.json()), method);
    }
  });
});

Deno.test("B: single commands on POST / map RESP2 replies to JSON", async (t) => {
  await using fx = await startBridgeFixture();
  const cases: [string, unknown[], unknown][] = [
    ["B1 SET answers OK", ["SET", "foo", "bar"], { result: "T0s=" }],
    ["B2 GET answers base64 of the value", ["GET", "foo"], { result: "YmFy" }],
    ["B3 GET of a missing key answers null", ["GET", "missing"], { result: null }],
    ["B4 INCR answers a JSON number", ["INCR", "n"], { result: 1 }],
    ["B5 a JSON number argument is sent as String(n)", ["SET", "num", 1], { result: "T0s=" }],
    ["B5 (GET)", ["GET", "num"], { result: "MQ==" }],
    ["B6 a boolean argument is sent as true", ["SET", "b", true], { result: "T0s=" }],
    ["B6 (GET)", ["GET", "b"], { result: "dHJ1ZQ==" }],
    ["B7 a float argument is sent as 1.5", ["SET", "f", 1.5], { result: "T0s=" }],
    ["B7 (GET)", ["GET", "f"], { result: "MS41" }],
    ["B8 a UTF-8 value round-trips as its bytes", ["SET", "u", "héllo"], { result: "T0s=" }],
    ["B8 (GET)", ["GET", "u"], { result: "aMOpbGxv" }],
    ["B9 a simple string other than OK is base64 too", ["TYPE", "foo"], { result: "c3RyaW5n" }],
    ["B10 HSET answers an integer", ["HSET", "h", "f", "v"], { result: 1 }],
    ["B10 HGETALL answers a flat array", ["HGETALL", "h"], { result: ["Zg==", "dg=="] }],
    ["B11 ZADD takes a float score", ["ZADD", "z", 1.5, "m"], { result: 1 }],
    ["B11 ZRANGE WITHSCORES", ["ZRANGE", "z", 0, -1, "WITHSCORES"], { result: ["bQ==", "MS41"] }],
    ["B12 MGET keeps nulls", ["MGET", "foo", "missing"], { result: ["YmFy", null] }],
    ["B13 LRANGE of a missing list is an empty array", ["LRANGE", "nolist", 0, -1], { result: [] }],
    ["B14 SCAN nests arrays", ["SCAN", "0", "MATCH", "foo", "COUNT", 1000], {
      result: ["MA==", ["Zm9v"]],
    }],
    ["B15 Lua tables map recursively, false to null", ["EVAL", "return {1,{2,'x'},false}", 0], {
      result: [1, [2, "eA=="], null],
    }],
    ["B16 a Lua status reply", ["EVAL", "return redis.status_reply('OK')", 0], { result: "T0s=" }],
    ["B16 a status reply inside an array is encoded", [
      "EVAL",
      "return {redis.status_reply('OK')}",
      0,
    ], { result: ["T0s="] }],
  ];
  for (const [name, command, expected] of cases) {
    await t.step(name, async () => {
      const res = await fx.post("/", command);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, expected);
    });
  }

  await t.step("B2 raw mode answers the value as text", async () => {
    assert.deepEqual((await fx.post("/", ["GET", "foo"], { raw: true })).body, { result: "bar" });
    assert.deepEqual((await fx.post("/", ["GET", "u"], { raw: true })).body, { result: "héllo" });
  });

  const errors: [string, unknown[], string][] = [
    ["B17 a WRONGTYPE error", ["HGET", "foo", "f"], WRONGTYPE],
    ["B18 an arity error", ["GET"], "ERR wrong number of arguments for 'get' command"],
    [
      "B19 an unknown command",
      ["NOPE", "a"],
      "ERR unknown command 'NOPE', with args beginning with: 'a' ",
    ],
    ["B20 EVALSHA of an unknown script", [
      "EVALSHA",
      "0000000000000000000000000000000000000000",
      0,
    ], "NOSCRIPT No matching script. Please use EVAL."],
  ];
  for (const [name, command, message] of errors) {
    await t.step(`${name} is a 400 with Redis's text, not base64 (B21)`, async () => {
      for (const raw of [false, true]) {
        const res = await fx.post("/", command, { raw });
        assert.equal(res.status, 400);
        assert.deepEqual(res.body, { error: message });
      }
    });
  }

  await t.step(
    "B22 connection-state and blocking commands are refused; the bridge goes on",
    async () => {
      const refused = [
        ["SELECT", "1"],
        ["MULTI"],
        ["EXEC"],
        ["DISCARD"],
        ["SUBSCRIBE", "x"],
        ["psubscribe", "x*"],
        ["WATCH", "k"],
        ["UNWATCH"],
        ["AUTH", "x"],
        ["HELLO", "3"],
        ["RESET"],
        ["QUIT"],
        ["MONITOR"],
        ["CLIENT", "SETNAME", "x"],
        ["CLIENT", "REPLY", "OFF"],
        ["BLPOP", "l", 0],
        ["BZPOPMIN", "z", 0],
        ["XREAD", "BLOCK", 0, "STREAMS", "s", "$"],
        ["WAIT", 1, 0],
      ];
      for (const command of refused) {
        const res = await fx.post("/", command);
        assert.equal(res.status, 400, JSON.stringify(command));
        assert.ok(isErrorBody(res.body), res.text);
      }
      const pipeline = await fx.post("/pipeline", [["GET", "foo"], ["SELECT", "1"]]);
      assert.equal(pipeline.status, 400);
      assert.ok(isErrorBody(pipeline.body));
      assert.deepEqual((await fx.post("/", ["GET", "foo"])).body, { result: "YmFy" });
      // Read-only CLIENT subcommands and non-blocking XREAD still work.
      assert.equal((await fx.post("/", ["CLIENT", "ID"])).status, 200);
      assert.deepEqual(
        (await fx.post("/", ["XREAD", "COUNT", 1, "STREAMS", "nostream", "0"])).body,
        {
          result: null,
        },
      );
    },
  );

  await t.step("non-UTF-8 bulk strings are base64 of the exact bytes", async () => {
    const script = "redis.call('SET', KEYS[1], string.char(255, 254, 0, 128)) return 1";
    assert.deepEqual((await fx.post("/", ["EVAL", script, 1, "bin"])).body, { result: 1 });
    assert.deepEqual((await fx.post("/", ["GET", "bin"])).body, { result: "//4AgA==" });
    assert.deepEqual((await fx.post("/", ["GET", "bin"], { raw: true })).body, {
      result: "\ufffd\ufffd\u0000\ufffd",
    });
  });

  await t.step("integers above 2^53 are sent exactly", async () => {
    await fx.post("/", ["SET", "big", "9007199254740993"]);
    const res = await fx.post("/", ["INCRBY", "big", 0]);
    assert.equal(res.text, '{"result":9007199254740993}');
  });
});

Deno.test("C: /pipeline answers one entry per command, in order", async (t) => {
  await using fx = await startBridgeFixture();

  await t.step("C1 errors stay in their entry; neighbours succeed", async () => {
    const res = await fx.post("/pipeline", [["SET", "a", "1"], ["INCR", "a"], ["HGET", "a", "x"], [
      "GET",
      "a",
    ]]);
    assert.equal(res.status, 200);
    assert.equal(
      res.text,
      `[{"result":"T0s="},{"result":2},{"error":"${WRONGTYPE}"},{"result":"Mg=="}]`,
    );
  });

  await t.step("C2 NOSCRIPT is an entry, upper case, next to a success", async () => {
    const res = await fx.post("/pipeline", [["EVALSHA", "wrong-sha1", 0], ["PING"]]);
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, [
      { error: "NOSCRIPT No matching script. Please use EVAL." },
      { result: "UE9ORw==" },
    ]);
  });

  await t.step("C3 1000 INCRs come back 1…1000 in order", async () => {
    const res = await fx.post("/pipeline", Array.from({ length: 1000 }, () => ["INCR", "c"]));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, Array.from({ length: 1000 }, (_, i) => ({ result: i + 1 })));
  });

  await t.step("C4 a body that is not an array of commands is a 400", async () => {
    for (
      const body of ['{"a":1}', "[1,2]", "[]", '[["GET","a"],[]]', '[["GET",["a"]]]', '["GET","a"]']
    ) {
      for (const path of ["/pipeline", "/multi-exec"]) {
        const res = await fx.post(path, body);
        assert.equal(res.status, 400, `${path} ${body}`);
        assert.ok(isErrorBody(res.body), res.text);
      }
    }
  });

  await t.step("C5 raw mode answers text", async () => {
    const res = await fx.post("/pipeline", [["SET", "s", "x"], ["GET", "s"]], { raw: true });
    assert.deepEqual(res.body, [{ result: "OK" }, { result: "x" }]);
  });
});

Deno.test("@upstash/redis runs unchanged against the bridge", async (t) => {
  await using fx = await startBridgeFixture();
  const redis = new Redis({ url: fx.bridge.url, token: TOKEN, retry: false });

  await t.step("auto-pipelined commands", async () => {
    const [set, incr, got] = await Promise.all([
      redis.set("k", { a: 1 }),
      redis.incr("n"),
      redis.get("k"),
    ]);
    assert.equal(set, "OK");
    assert.equal(incr, 1);
    assert.deepEqual(got, { a: 1 });
    assert.equal(await redis.hset("h", { f: "v", n: 2 }), 2);
    assert.deepEqual(await redis.hgetall("h"), { f: "v", n: 2 });
    assert.deepEqual(await redis.mget("k", "missing"), [{ a: 1 }, null]);
    assert.equal(await redis.type("k"), "string");
  });

  await t.step("explicit pipeline and multi", async () => {
    const p = redis.pipeline();
    p.set("p", "héllo");
    p.get("p");
    p.incr("p");
    await assert.rejects(p.exec(), /Command 3 \[ incr \] failed: ERR value is not an integer/);
    const m = redis.multi();
    m.set("m", 1);
    m.incr("m");
    assert.deepEqual(await m.exec(), ["OK", 2]);
    assert.equal(await redis.get("p"), "héllo");
  });

  await t.step("errors arrive as UpstashError with Redis's text", async () => {
    await assert.rejects(redis.hget("p", "f"), (err: Error) => {
      assert.equal(err.name, "UpstashError");
      assert.match(
        err.message,
        /WRONGTYPE Operation against a key holding the wrong kind of value/,
      );
      return true;
    });
  });

  await t.step("without auto-pipelining and without base64", async () => {
    const plain = new Redis({
      url: fx.bridge.url,
      token: TOKEN,
      retry: false,
      enableAutoPipelining: false,
      responseEncoding: false,
    });
    assert.equal(await plain.set("plain", "x,y"), "OK");
    assert.equal(await plain.get("plain"), "x,y");
    assert.deepEqual(await plain.lrange("nolist", 0, -1), []);
  });

  await t.step("a wrong token is rejected with the bridge's message", async () => {
    const wrong = new Redis({ url: fx.bridge.url, token: "wrong", retry: false });
    await assert.rejects(wrong.get("k"), /Unauthorized/);
  });
});

Deno.test("startUpstashBridge() checks its options and frees its port on close", async () => {
  await assert.rejects(
    startUpstashBridge({ redisPort: 0, token: TOKEN }),
    { name: "BridgeStartError", message: "Cannot start the Upstash bridge: redisPort is 0" },
  );
  await assert.rejects(startUpstashBridge({ redisPort: 6379, token: "" }), {
    name: "BridgeStartError",
  });
  // Redis need not be up to start; requests then answer 503.
  const bridge = await startUpstashBridge({ redisPort: 1, token: TOKEN });
  try {
    await assert.rejects(
      startUpstashBridge({ redisPort: 1, token: TOKEN, port: bridge.port }),
      (err: Error) => err.name === "BridgeStartError" && err.cause instanceof Deno.errors.AddrInUse,
    );
    const res = await fetch(bridge.url, {
      method: "POST",
      headers: requestHeaders(),
      body: '["PING"]',
    });
    assert.equal(res.status, 503);
    assert.match((await res.json()).error, /^Redis at 127\.0\.0\.1:1 is unavailable/);
  } finally {
    await bridge.close();
  }
  assert.equal(bridge.url, `http://127.0.0.1:${bridge.port}`);
  await assert.rejects(fetch(bridge.url, { method: "POST" }), TypeError);
});
