/**
 * Which leads are labelled, and the label. The seed pipeline labelled every
 * lead in `responded`, `meeting_scheduled`, `client` or `not_interested`,
 * converted = `client`. A lead that replied yesterday is still being worked,
 * though, and many of those become clients next week: counting them as "not
 * converted" teaches the model that fresh replies fail, and the newest rows —
 * the holdout — are the most affected. So `responded` and
 * `meeting_scheduled` count (as not converted) only once they have not moved
 * for `settleDays`; `client` and `not_interested` are final.
 *
 * @module
 */

/** Statuses with a final outcome. */
export const FINAL_STATUSES = ["client", "not_interested"] as const;

/** Statuses that are an outcome once they have not moved for the settle period. */
export const SETTLING_STATUSES = ["responded", "meeting_scheduled"] as const;

/** Statuses still being worked: rescored after a new champion is activated. */
export const OPEN_STATUSES = ["new", "contacted", "responded", "meeting_scheduled"] as const;

const DAY_MS = 86_400_000;

/** Whether a lead with this status, last changed at `updatedAt` (epoch ms), is labelled at `now`. */
export function isLabelled(
  status: string,
  updatedAt: number,
  now: number,
  settleDays: number,
): boolean {
  if ((FINAL_STATUSES as readonly string[]).includes(status)) return true;
  return (SETTLING_STATUSES as readonly string[]).includes(status) &&
    updatedAt <= now - settleDays * DAY_MS;
}
