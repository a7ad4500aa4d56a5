/**
 * Errors of the lead domain. Each is an AppError with a stable code, so the
 * edge answers it as problem+json and workers can classify it by `name`.
 * (`IllegalTransitionError` lives with the state machine in `status.ts`.)
 *
 * @module
 */
import { AppError } from "../errors.ts";

/** No lead has this id. */
export class LeadNotFoundError extends AppError {
  override name = "LeadNotFoundError";
  constructor(readonly leadId: string) {
    super("lead-not-found", 404, "No such lead", {
      details: { detail: `No lead has id ${JSON.stringify(leadId)}`, lead_id: leadId },
    });
  }
}

/** A lead with this (source, external_id) already exists. */
export class LeadExistsError extends AppError {
  override name = "LeadExistsError";
  constructor(
    readonly source: string,
    readonly externalId: string,
    readonly existingId: string | null,
  ) {
    super("lead-exists", 409, "The lead already exists", {
      details: {
        detail: `A lead from source ${JSON.stringify(source)} with external_id ${
          JSON.stringify(externalId)
        } already exists`,
        ...(existingId === null ? {} : { lead_id: existingId }),
      },
    });
  }
}

/** A list cursor that this code did not produce (or that was altered). */
export class InvalidCursorError extends AppError {
  override name = "InvalidCursorError";
  constructor(options: { cause?: unknown } = {}) {
    super("invalid-cursor", 400, "Invalid cursor", {
      ...options,
      details: { detail: "Pass back the next_cursor of a previous page unchanged" },
    });
  }
}
