import assert from "node:assert/strict";
import { isRedisUnreachable } from "./redis_failure.ts";

const named = (name: string, message: string) => Object.assign(new Error(message), { name });

Deno.test("isRedisUnreachable tells an outage from a bug", () => {
  assert.ok(
    isRedisUnreachable(
      named("UpstashError", "Redis at 127.0.0.1:1 is unavailable: connect ECONNREFUSED"),
    ),
  );
  assert.ok(
    isRedisUnreachable(
      new TypeError("error sending request for url (http://127.0.0.1:1/): connection refused"),
    ),
  );
  assert.ok(
    !isRedisUnreachable(
      named("UpstashError", "ERR wrong number of arguments for 'evalsha' command"),
    ),
  );
  assert.ok(
    !isRedisUnreachable(new TypeError("Cannot read properties of undefined (reading 'x')")),
  );
  assert.ok(!isRedisUnreachable(new RangeError("connection refused")));
  assert.ok(!isRedisUnreachable(null));
  assert.ok(!isRedisUnreachable("unavailable"));
});
