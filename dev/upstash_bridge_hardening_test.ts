import assert from "node:assert/strict";
import { Redis } from "@upstash/redis";
import { redisCommand } from "./redis_server.ts";
import { startBridgeFixture, TOKEN } from "../testing/upstash_bridge.ts";

Deno.test("redis-server behind the bridge requires its password; the bridge has it", async () => {
  await using f = await startBridgeFixture();
  // Straight to redis-server without AUTH: refused.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: f.redis.port });
  try {
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    assert.match(new TextDecoder().decode(buf.subarray(0, n ?? 0)), /^-NOAUTH/);
  } finally {
    conn.close();
  }
  assert.equal(await redisCommand(f.redis.port, f.redis.password, "PING"), "+PONG");
  await assert.rejects(redisCommand(f.redis.port, "wrong", "PING"), /refused AUTH/);
  assert.deepEqual((await f.post("/", ["PING"], { raw: true })).body, { result: "PONG" });
});

Deno.test("the bridge refuses server administration, in every form, and keeps serving", async () => {
  await using f = await startBridgeFixture();
  const refused = [
    ["CONFIG", "SET", "dir", "/tmp"],
    ["config", "get", "*"],
    ["DEBUG", "SLEEP", "0"],
    ["MODULE", "LOAD", "/tmp/x.so"],
    ["SHUTDOWN", "NOSAVE"],
    ["SAVE"],
    ["BGSAVE"],
    ["REPLICAOF", "127.0.0.1", "1"],
    ["SLAVEOF", "127.0.0.1", "1"],
    ["ACL", "SETUSER", "x", "on"],
    ["MONITOR"],
  ];
  for (const command of refused) {
    const single = await f.post("/", command, { raw: true });
    assert.equal(single.status, 400, command.join(" "));
    assert.match(String((single.body as { error: string }).error), /not allowed|not supported/);
    const piped = await f.post("/pipeline", [["PING"], command], { raw: true });
    assert.equal(piped.status, 400, `pipeline: ${command.join(" ")}`);
    const path = await fetch(`${f.bridge.url}/${command.map(encodeURIComponent).join("/")}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(path.status, 400, `path form: ${command.join(" ")}`);
    await path.body?.cancel();
  }
  assert.equal(await redisCommand(f.redis.port, f.redis.password, "PING"), "+PONG");
  assert.deepEqual((await f.post("/", ["PING"], { raw: true })).body, { result: "PONG" });
});

Deno.test("the bridge caps request bodies (413) and accepts only its exact token", async () => {
  await using f = await startBridgeFixture({ maxBodyBytes: 1024 });
  const big = await f.post("/", ["SET", "k", "x".repeat(2048)], { raw: true });
  assert.equal(big.status, 413);
  // Streamed without a Content-Length: counted as it arrives.
  const stream = new ReadableStream({
    start(ctl) {
      for (let i = 0; i < 4; i++) ctl.enqueue(new TextEncoder().encode(`"${"y".repeat(500)}",`));
      ctl.enqueue(new TextEncoder().encode('"z"]'));
      ctl.close();
    },
  });
  const streamed = await fetch(`${f.bridge.url}/pipeline`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: stream,
  });
  assert.equal(streamed.status, 413);
  await streamed.body?.cancel();
  for (
    const token of [`${TOKEN}x`, TOKEN.toLowerCase() === TOKEN ? "U" : "t", "", `${TOKEN}${TOKEN}`]
  ) {
    const res = await f.post("/", ["PING"], { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 401, JSON.stringify(token));
  }
  assert.equal((await f.post("/", ["PING"], { raw: true })).status, 200);
});

Deno.test("path form: GET /set/foo/bar and GET /get/foo, as curl sends them", async () => {
  await using f = await startBridgeFixture();
  const key = `pf-${crypto.randomUUID()}`;
  const get = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${f.bridge.url}${path}`, init);
    return { status: res.status, body: await res.json() };
  };
  const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
  assert.deepEqual(await get(`/set/${key}/bar`, auth), { status: 200, body: { result: "OK" } });
  assert.deepEqual(await get(`/get/${key}`, auth), { status: 200, body: { result: "bar" } });
  // The token as a query parameter, as Upstash's curl examples allow.
  assert.deepEqual(await get(`/get/${key}?_token=${TOKEN}`), {
    status: 200,
    body: { result: "bar" },
  });
  assert.equal((await get(`/get/${key}`)).status, 401);
  assert.equal((await get(`/get/${key}?_token=nope`)).status, 401);
  // Percent-encoded segments, a POST body as the last argument, query pairs after it.
  assert.deepEqual(await get(`/set/${key}%2Fa%20b/with%2Fslash`, auth), {
    status: 200,
    body: { result: "OK" },
  });
  assert.deepEqual(await get(`/get/${key}%2Fa%20b`, auth), {
    status: 200,
    body: { result: "with/slash" },
  });
  const posted = await fetch(`${f.bridge.url}/set/${key}?EX=100`, {
    method: "POST",
    ...auth,
    body: "the body",
  });
  assert.deepEqual(await posted.json(), { result: "OK" });
  assert.deepEqual(await get(`/get/${key}`, auth), { status: 200, body: { result: "the body" } });
  const ttl = (await get(`/ttl/${key}`, auth)).body.result;
  assert.ok(ttl > 0 && ttl <= 100, `TTL ${ttl}`);
  // Errors as in the JSON form.
  assert.equal((await get(`/incr/${key}`, auth)).status, 400);
  assert.equal((await get(`/get/%E0%A4%A`, auth)).status, 400);
  // The JSON protocol's paths keep their methods.
  assert.equal(
    await fetch(`${f.bridge.url}/pipeline`, auth).then(async (r) => {
      await r.body?.cancel();
      return r.status;
    }),
    405,
  );
});

Deno.test("upstash-sync-token: every answer carries one; the real SDK tracks and sends it", async () => {
  await using f = await startBridgeFixture();
  const seen: (string | null)[] = [];
  const redis = new Redis({
    url: f.bridge.url,
    token: TOKEN,
    enableAutoPipelining: false,
  });
  // The SDK's fetch, observed: what it sends with each request.
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    seen.push(new Headers(init?.headers).get("upstash-sync-token"));
    return await realFetch(input, init);
  };
  try {
    const key = `sync-${crypto.randomUUID()}`;
    await redis.set(key, "v1");
    const afterWrite = redis.readYourWritesSyncToken;
    assert.match(afterWrite ?? "", /^\d+$/, "the SDK stored the bridge's token");
    assert.equal(await redis.get(key), "v1", "the read after the write sees it");
    assert.ok(Number(redis.readYourWritesSyncToken) > Number(afterWrite), "tokens advance");
    // The first request had none yet; the second sent what the first answered.
    assert.equal(seen[0] ?? "", "");
    assert.equal(seen[1], afterWrite);
  } finally {
    globalThis.fetch = realFetch;
  }
  // Plain HTTP (curl): errors and 401s carry it too.
  const res = await fetch(`${f.bridge.url}/`, { method: "POST", body: '["PING"]' });
  assert.equal(res.status, 401);
  assert.match(res.headers.get("upstash-sync-token") ?? "", /^\d+$/);
  await res.body?.cancel();
});
