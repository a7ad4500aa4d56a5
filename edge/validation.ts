/**
 * Request validation errors: every zod failure on a body, query, header or
 * path parameter becomes ONE 400 problem+json listing each invalid field.
 *
 * @module
 */
import type { Hook } from "@hono/zod-openapi";
import { AppError } from "../shared/errors.ts";
import { type IssueLike, plainIssues } from "../shared/plain_issues.ts";

/** One invalid field: where it is (`body.payload.n`, `query.limit`, `path.id`) and why. */
export interface InvalidField {
  field: string;
  message: string;
}

/** 400 `invalid-request` with the list of invalid fields. */
export class RequestValidationError extends AppError {
  override name = "RequestValidationError";
  constructor(readonly fields: InvalidField[]) {
    super("invalid-request", 400, "The request is invalid", {
      details: {
        detail: fields.map((f) => `${f.field}: ${f.message}`).join("; "),
        invalid_fields: fields,
      },
    });
  }
}

const TARGET_NAMES: Record<string, string> = {
  json: "body",
  form: "body",
  query: "query",
  param: "path",
  header: "header",
  cookie: "cookie",
};

/** Converts zod issues under a validation target into invalid fields, in plain words. */
export function fieldsFromIssues(
  target: string,
  issues: readonly IssueLike[],
): InvalidField[] {
  const prefix = TARGET_NAMES[target] ?? target;
  return issues.flatMap(plainIssues).map((i) => ({
    field: [prefix, ...i.path].join("."),
    message: i.message,
  }));
}

/** The `defaultHook` for OpenAPIHono: throw instead of answering, so onError formats it. */
// deno-lint-ignore no-explicit-any
export const validationHook: Hook<any, any, any, any> = (result) => {
  if (!result.success) {
    throw new RequestValidationError(fieldsFromIssues(result.target, result.error.issues));
  }
};
