/**
 * Phone number normalisation for leads: any human spelling of a number
 * ("(415) 555-2671", "+44 20 7946 0958", "020 7946 0958" with region GB)
 * becomes E.164, plus whether the number is valid for its region.
 *
 * @module
 */
import {
  type CountryCode,
  isSupportedCountry,
  parsePhoneNumberFromString,
} from "libphonenumber-js";

/** The outcome of {@linkcode normalizePhone}. */
export interface NormalizedPhone {
  /** E.164 (`+14155552671`) when the input is a possible number; null otherwise. */
  e164: string | null;
  /** True when libphonenumber's metadata says the number is assigned-looking for its region. */
  valid: boolean;
}

const NONE: NormalizedPhone = { e164: null, valid: false };

// libphonenumber refuses longer inputs anyway (250); cutting earlier keeps a
// pasted blob from costing regex time.
const MAX_INPUT_LENGTH = 100;

/**
 * Normalises `raw` to E.164. Numbers without a `+` country code are read in
 * `defaultRegion` (ISO 3166-1 alpha-2, e.g. "US"); an unknown region is
 * ignored, so such numbers are then unparseable. Total: never throws; empty,
 * non-string or unparseable input gives `{ e164: null, valid: false }`.
 *
 * A parseable but impossible number (too short, too long) also gives null:
 * storing it would look like a phone we could call. A possible but invalid
 * number keeps its E.164 form with `valid: false`, for a human to check.
 */
export function normalizePhone(raw: unknown, defaultRegion?: string | null): NormalizedPhone {
  if (typeof raw !== "string" && typeof raw !== "number") return NONE;
  const text = String(raw).trim();
  if (text === "" || text.length > MAX_INPUT_LENGTH) return NONE;
  const region = defaultRegion ? defaultRegion.trim().toUpperCase() : "";
  const country = region !== "" && isSupportedCountry(region) ? region as CountryCode : undefined;
  try {
    const parsed = parsePhoneNumberFromString(text, country ? { defaultCountry: country } : {});
    if (!parsed || !parsed.isPossible()) return NONE;
    return { e164: parsed.number, valid: parsed.isValid() };
  } catch {
    // The library reports bad input by returning undefined, but a total
    // function must not depend on that staying true for every input.
    return NONE;
  }
}
