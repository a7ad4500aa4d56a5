/**
 * The event types a `leads` subscription may filter on (`types` in a
 * `subscribe` frame, `?types=` on the upgrade): every type a `lead_events`
 * row can have that the platform knows, i.e. the platform's own types and the
 * ones ingest accepts. A type outside this list is refused rather than
 * silently matching nothing, so a typo never looks like a quiet feed.
 *
 * @module
 */
import { INGEST_EVENT_TYPES } from "../analytics/ingest.ts";
import { LEAD_EVENT_TYPES } from "../leads/events.ts";

/** The filterable lead event types, sorted. */
export const FEED_LEAD_EVENT_TYPES: readonly string[] = [
  ...new Set([...LEAD_EVENT_TYPES, ...INGEST_EVENT_TYPES]),
].sort();

/** Most types one filter may list. */
export const MAX_FILTER_TYPES = 32;

const KNOWN = new Set(FEED_LEAD_EVENT_TYPES);

/** A filter that cannot be used, as the error to answer with. */
export interface TypeFilterProblem {
  code: "unknown-event-type" | "bad-frame";
  message: string;
}

/**
 * Checks a `types` filter for a frame (or upgrade) whose subscriptions are
 * `topics`: every type must be known and a `leads` subscription named (the
 * filter applies to nothing else). Null when it is fine.
 */
export function checkTypeFilter(
  types: readonly string[],
  topics: readonly string[],
): TypeFilterProblem | null {
  const unknown = types.filter((t) => !KNOWN.has(t));
  if (unknown.length > 0) {
    return {
      code: "unknown-event-type",
      message: `Unknown lead event type ${
        unknown.slice(0, 3).map((t) => JSON.stringify(t.slice(0, 64))).join(", ")
      }; known: ${FEED_LEAD_EVENT_TYPES.join(", ")}`,
    };
  }
  if (types.length > MAX_FILTER_TYPES) {
    return { code: "bad-frame", message: `At most ${MAX_FILTER_TYPES} types per filter` };
  }
  if (!topics.some((t) => t === "leads" || t.startsWith("leads:"))) {
    return {
      code: "bad-frame",
      message: "types filters the leads topic: name leads or leads:<lead id> in the same request",
    };
  }
  return null;
}
