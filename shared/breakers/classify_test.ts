import assert from "node:assert/strict";
import {
  classifyError,
  classifyStatus,
  isPlatformOrInputError,
  parseRetryAfter,
} from "./classify.ts";
import { AppError } from "../errors.ts";
import { BreakerOpenError, BreakerTimeoutError } from "./errors.ts";
import { continueRun, OutcomeBatch } from "./batch.ts";
import { resolvePolicies } from "./policy.ts";

const policy = { exclude_client_errors: true };

Deno.test("classifyStatus(): 5xx fail, 4xx succeed, 429 is ignored", () => {
  assert.equal(classifyStatus(200, policy), "success");
  assert.equal(classifyStatus(404, policy), "success");
  assert.equal(classifyStatus(404, { exclude_client_errors: false }), "failure");
  assert.equal(classifyStatus(429, policy), "ignored");
  assert.equal(classifyStatus(500, policy), "failure");
  assert.equal(classifyStatus(503, policy), "failure");
});

Deno.test("classifyError(): timeouts, connection errors and 5xx fail; client errors do not", () => {
  assert.equal(classifyError(new BreakerTimeoutError("x", 10), policy), "failure");
  assert.equal(classifyError(new DOMException("t", "TimeoutError"), policy), "failure");
  assert.equal(
    classifyError(new TypeError("error sending request: connection refused"), policy),
    "failure",
  );
  assert.equal(classifyError(new Deno.errors.ConnectionRefused("refused"), policy), "failure");
  assert.equal(classifyError(Object.assign(new Error("bad"), { status: 400 }), policy), "success");
  assert.equal(
    classifyError(Object.assign(new Error("slow down"), { status: 429 }), policy),
    "ignored",
  );
  assert.equal(
    classifyError(Object.assign(new Error("down"), { statusCode: 502 }), policy),
    "failure",
  );
  // Postgres: a unique violation is the request's fault; an admin shutdown is not.
  assert.equal(
    classifyError(Object.assign(new Error("dup"), { code: "23505" }), policy),
    "success",
  );
  assert.equal(
    classifyError(Object.assign(new Error("shutdown"), { code: "57P01" }), policy),
    "failure",
  );
  assert.equal(classifyError(new BreakerOpenError("inner", "open", 5), policy), "ignored");
  assert.equal(classifyError(new Error("caller gave up"), policy, true), "ignored");
  assert.equal(classifyError("a string", policy), "failure");
});

Deno.test("parseRetryAfter() reads delta-seconds and HTTP dates", () => {
  assert.equal(parseRetryAfter("2", 0), 2000);
  assert.equal(parseRetryAfter(null, 0), null);
  assert.equal(parseRetryAfter("soon", 0), null);
  const now = Date.parse("2026-01-01T00:00:00Z");
  assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
});

Deno.test("continueRun() equals reporting the outcomes one by one", () => {
  const sequences = ["FFSFFF", "SFFSF", "FFF", "S", "FSFSFSFF", "SSFFFS", ""];
  for (const seq of sequences) {
    for (const start of [0, 1, 2]) {
      const batch = new OutcomeBatch();
      let consecutive = start;
      let tripped = false;
      for (const c of seq) {
        batch.add(c === "F", false);
        consecutive = c === "F" ? consecutive + 1 : 0;
        if (consecutive >= 3) tripped = true;
      }
      assert.deepEqual(continueRun(start, batch, 3), { consecutive, tripped }, `${start} + ${seq}`);
    }
  }
});

Deno.test("resolvePolicies() fills defaults and lists every problem", () => {
  const p = resolvePolicies({ x: { fail_max: 2, reset_timeout_ms: 100, timeout_ms: 300 } }).x!;
  assert.equal(p.success_threshold, 1);
  assert.equal(p.probe_lease_ms, 1300);
  assert.equal(p.exclude_client_errors, true);
  assert.throws(
    () =>
      resolvePolicies({
        "Bad-Name": { fail_max: 0, reset_timeout_ms: 100 },
        y: {
          fail_max: 1,
          reset_timeout_ms: -1,
          failure_rate: { threshold_pct: 150, window_ms: 1000, min_calls: 1 },
        },
      }),
    (err: Error) =>
      err instanceof RangeError && /Bad-Name/.test(err.message) && /fail_max/.test(err.message) &&
      /reset_timeout_ms/.test(err.message) && /threshold_pct/.test(err.message),
  );
  assert.ok(Object.keys(resolvePolicies()).includes("database"));
});

Deno.test("classifyError(): the platform's bugs and the caller's input are ignored, dependency errors fail", () => {
  for (const strict of [policy, { exclude_client_errors: false }]) {
    for (
      const bug of [
        new RangeError("Maximum call stack size exceeded"),
        new TypeError("Cannot read properties of undefined"),
        new SyntaxError("Unexpected token"),
        new ReferenceError("x is not defined"),
        new URIError("URI malformed"),
        new AppError("invalid-request", 400, "bad"),
        new AppError("lead-not-found", 404, "no lead"),
        Object.assign(new Error("schema"), { name: "ZodError" }),
      ]
    ) {
      assert.equal(isPlatformOrInputError(bug), true, String(bug));
      assert.equal(classifyError(bug, strict), "ignored", String(bug));
    }
    for (
      const down of [
        new TypeError("fetch failed"),
        new TypeError("error sending request for url (http://x/): connection refused"),
        new Deno.errors.ConnectionReset("reset"),
        new Error("Connection terminated unexpectedly"),
        // The Neon driver's WebSocket failure is an ErrorEvent, not an Error.
        { type: "error", message: "NetworkError: failed to connect to WebSocket" },
        new AppError("dependency-unavailable", 503, "down"),
      ]
    ) {
      assert.equal(isPlatformOrInputError(down), false, String(down));
      assert.equal(classifyError(down, strict), "failure", String(down));
    }
  }
});
