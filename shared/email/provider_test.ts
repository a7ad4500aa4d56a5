import assert from "node:assert/strict";
import { isPermanent, PermanentTaskError } from "../queue/errors.ts";
import { EmailPermanentError, EmailProviderConfigError, EmailTransientError } from "./provider.ts";

Deno.test("EmailPermanentError is a PermanentTaskError by class and by name", () => {
  const cause = new Error("550 5.1.1 No such user");
  const err = new EmailPermanentError("550 5.1.1 No such user", {
    provider: "smtp",
    status: 550,
    cause,
  });
  assert.ok(err instanceof PermanentTaskError);
  assert.equal(err.name, "PermanentTaskError");
  assert.equal(err.message, "550 5.1.1 No such user");
  assert.equal(err.code, "email-rejected");
  assert.equal(err.status, 550);
  assert.equal(err.cause, cause);
  assert.ok(isPermanent(err));
  // After crossing a process boundary only name and message survive.
  assert.ok(isPermanent(JSON.parse(JSON.stringify({ name: err.name, message: err.message }))));
});

Deno.test("EmailTransientError is retried: not permanent, cause and hint kept", () => {
  const cause = new TypeError("connection refused");
  const err = new EmailTransientError("SMTP send failed", {
    provider: "smtp",
    cause,
    retryAfterMs: 30_000,
  });
  assert.equal(isPermanent(err), false);
  assert.equal(err.name, "EmailTransientError");
  assert.equal(err.cause, cause);
  assert.equal(err.retryAfterMs, 30_000);
});

Deno.test("EmailProviderConfigError names the provider without echoing settings", () => {
  const err = new EmailProviderConfigError("smtp", "the URL has no host");
  assert.equal(err.code, "email-provider-config");
  assert.equal(err.message, "Invalid smtp email provider settings: the URL has no host");
});
