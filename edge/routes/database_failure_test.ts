import assert from "node:assert/strict";
import { TransactionDeadlineError } from "../../shared/leads/transaction.ts";
import { WriteKeyBusyError } from "../../shared/leads/idempotent_write.ts";
import { isDatabaseFailure } from "./database_failure.ts";

Deno.test("a write past its deadline is a database failure; the caller's mistakes are not", () => {
  // Charged to the database breaker and answered 503 / queued 202 like an outage.
  assert.equal(isDatabaseFailure(new TransactionDeadlineError(5000)), true);
  assert.equal(isDatabaseFailure(new Error("Connection terminated unexpectedly")), true);
  assert.equal(isDatabaseFailure(Object.assign(new Error("dup"), { code: "23505" })), false);
  assert.equal(isDatabaseFailure(new WriteKeyBusyError()), false);
  assert.equal(isDatabaseFailure(new RangeError("bug")), false);
});
