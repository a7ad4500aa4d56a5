/**
 * `emails_total{provider,outcome}`: one count per send_email attempt. The
 * outcome is the handler's own `status` (`sent`, `already_sent`,
 * `suppressed`, `lead_not_interested`), or for a thrown error `rejected`
 * (permanent), `deferred` (breaker refused) or `failed` (retried).
 *
 * @module
 */
import { isDeferred, isPermanent } from "../../shared/queue/errors.ts";
import type { Handler } from "../runner.ts";

const STATUSES = new Set(["sent", "already_sent", "suppressed", "lead_not_interested"]);

/** Wraps the send_email handler of `provider` (EMAIL_PROVIDER: a closed set). */
export function countEmailOutcomes(handler: Handler, provider: string): Handler {
  return async function countedEmail(payload, ctx) {
    const emails = ctx.deps.metrics.emails;
    let result: unknown;
    try {
      result = await handler(payload, ctx);
    } catch (err) {
      const outcome = isPermanent(err) ? "rejected" : isDeferred(err) ? "deferred" : "failed";
      emails.inc({ provider, outcome });
      throw err;
    }
    const status = String((result as { status?: unknown } | null)?.status);
    emails.inc({ provider, outcome: STATUSES.has(status) ? status : "other" });
    return result;
  };
}
