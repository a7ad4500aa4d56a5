/**
 * The outreach state machine of a lead (`businesses.outreach_status`):
 *
 * ```text
 * new → contacted → responded → meeting_scheduled → client
 *  └──────────┴───────────┴──────────────┴────────────┴──→ not_interested
 * ```
 *
 * Rules, decided here once for the API and the workers:
 *
 * - Only the listed single steps move forward. Skipping (`new → responded`)
 *   is refused, so every `status_changed` event in `lead_events` is one edge
 *   of this graph and funnel counts add up (every client passed through
 *   `responded`). Workers that learn about a later state (a booking from a
 *   lead still at `contacted`) use `transitionLead(…, { ifReached: "noop" })`,
 *   which walks the intermediate steps and records each one.
 * - Any state, `client` included, may move to `not_interested`.
 * - `not_interested` is terminal: nothing leaves it.
 * - Moving to the current state is a no-op, never an error.
 *
 * @module
 */
import { AppError } from "../errors.ts";

/** Every outreach status, in pipeline order (`not_interested` last, off the pipeline). */
export const OUTREACH_STATUSES = [
  "new",
  "contacted",
  "responded",
  "meeting_scheduled",
  "client",
  "not_interested",
] as const;

/** One outreach status. */
export type OutreachStatus = (typeof OUTREACH_STATUSES)[number];

/** The forward pipeline, without the `not_interested` exit. */
export const PIPELINE: readonly OutreachStatus[] = OUTREACH_STATUSES.slice(0, 5);

const NEXT: Readonly<Record<OutreachStatus, readonly OutreachStatus[]>> = {
  new: ["contacted", "not_interested"],
  contacted: ["responded", "not_interested"],
  responded: ["meeting_scheduled", "not_interested"],
  meeting_scheduled: ["client", "not_interested"],
  client: ["not_interested"],
  not_interested: [],
};

/** True for a string that is an outreach status. */
export function isOutreachStatus(value: unknown): value is OutreachStatus {
  return typeof value === "string" && (OUTREACH_STATUSES as readonly string[]).includes(value);
}

/** The states `from` may move to (the same state, a no-op, is not listed). */
export function allowedTransitions(from: OutreachStatus): readonly OutreachStatus[] {
  return NEXT[from];
}

/** True when `from → to` is allowed or is the same state (a no-op). */
export function canTransition(from: OutreachStatus, to: OutreachStatus): boolean {
  return from === to || NEXT[from].includes(to);
}

/** `from → to` is not an edge of the state machine. */
export class IllegalTransitionError extends AppError {
  override name = "IllegalTransitionError";
  constructor(
    readonly from: OutreachStatus,
    readonly to: OutreachStatus,
    options: { leadId?: string } = {},
  ) {
    const allowed = allowedTransitions(from);
    super(
      "illegal-transition",
      409,
      `Cannot move lead from "${from}" to "${to}"`,
      {
        details: {
          detail: allowed.length === 0
            ? `"${from}" is terminal: no further status changes are allowed`
            : `From "${from}" the allowed next states are: ${allowed.join(", ")}`,
          ...(options.leadId === undefined ? {} : { lead_id: options.leadId }),
          from,
          to,
          allowed: [...allowed],
        },
      },
    );
  }
}

/**
 * Throws {@linkcode IllegalTransitionError} unless `from → to` is allowed.
 * The same state passes (the caller treats it as a no-op).
 */
export function assertTransition(
  from: OutreachStatus,
  to: OutreachStatus,
  options: { leadId?: string } = {},
): void {
  if (!canTransition(from, to)) throw new IllegalTransitionError(from, to, options);
}

/**
 * The steps that lead from `from` to `to` for a caller that only wants the
 * lead to have REACHED `to` (workers): `[]` when it is already there or past
 * it (or `not_interested`, which is terminal), otherwise every single step in
 * order, e.g. `contacted → meeting_scheduled` gives
 * `[["contacted","responded"], ["responded","meeting_scheduled"]]`.
 */
export function stepsToReach(
  from: OutreachStatus,
  to: OutreachStatus,
): [OutreachStatus, OutreachStatus][] {
  if (from === to || from === "not_interested") return [];
  if (to === "not_interested") return [[from, to]];
  const start = PIPELINE.indexOf(from);
  const end = PIPELINE.indexOf(to);
  const steps: [OutreachStatus, OutreachStatus][] = [];
  for (let i = start; i < end; i++) steps.push([PIPELINE[i]!, PIPELINE[i + 1]!]);
  return steps;
}
