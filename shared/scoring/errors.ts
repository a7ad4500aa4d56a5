/**
 * Errors of the model registry, answered as problem+json by the edge.
 *
 * @module
 */
import { AppError } from "../errors.ts";

/** No model has this version. */
export class ModelNotFoundError extends AppError {
  override name = "ModelNotFoundError";
  constructor(readonly version: number) {
    super("model-not-found", 404, "No such model", {
      details: { detail: `No model has version ${version}`, version },
    });
  }
}

/** The model cannot become the champion (rejected, or never trained). */
export class ModelNotActivatableError extends AppError {
  override name = "ModelNotActivatableError";
  constructor(readonly version: number, readonly modelStatus: string) {
    super("model-not-activatable", 409, "The model cannot be activated", {
      details: {
        detail:
          `Model ${version} is ${modelStatus}; only candidates and retired models can be activated`,
        version,
        model_status: modelStatus,
      },
    });
  }
}

/** Rollback asked with no earlier champion to return to. */
export class NoPreviousChampionError extends AppError {
  override name = "NoPreviousChampionError";
  constructor() {
    super("no-previous-champion", 409, "There is no previous champion", {
      details: { detail: "The current champion (if any) has no earlier champion to roll back to" },
    });
  }
}
