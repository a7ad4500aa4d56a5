/**
 * What the Places client asks Text Search (New) for, and how one Place
 * becomes a lead input for `toLeadRecord()` (record.ts).
 *
 * @module
 */
import type { LeadInput } from "./record.ts";

/**
 * The response fields requested. Text Search (New) has no default fields: a
 * request without a mask is an error, and `nextPageToken` is only returned
 * when it is in the mask.
 */
export const PLACES_FIELD_MASK = [
  "places.id",
  "places.displayName",
  "places.formattedAddress",
  "places.addressComponents",
  "places.nationalPhoneNumber",
  "places.internationalPhoneNumber",
  "places.websiteUri",
  "places.rating",
  "places.userRatingCount",
  "places.primaryType",
  "places.primaryTypeDisplayName",
  "nextPageToken",
].join(",");

/** The documented subset of a Place this client reads (every field may be absent). */
export interface Place {
  id?: string;
  displayName?: { text?: string; languageCode?: string };
  formattedAddress?: string;
  addressComponents?: { longText?: string; shortText?: string; types?: string[] }[];
  nationalPhoneNumber?: string;
  internationalPhoneNumber?: string;
  websiteUri?: string;
  rating?: number;
  userRatingCount?: number;
  primaryType?: string;
  primaryTypeDisplayName?: { text?: string; languageCode?: string };
}

/** The value when it is a non-empty string (a Place comes from JSON: trust no field's type). */
function str(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

function component(place: Place, type: string): string | null {
  if (!Array.isArray(place.addressComponents)) return null;
  const found = place.addressComponents.find((c) =>
    typeof c === "object" && c !== null && Array.isArray(c.types) && c.types.includes(type)
  );
  return str(found?.longText);
}

/**
 * Maps a Place to a lead input: `external_id` is the place id, `city` the
 * `locality` component (UK addresses carry the town as `postal_town`
 * instead), the phone the international form (it needs no region), the
 * category the localized type label or else the type with spaces. Values
 * are passed on as they are; `toLeadRecord()` (record.ts) judges them.
 */
export function placeToLeadInput(place: Place): LeadInput {
  const website = str(place.websiteUri);
  return {
    source: "places",
    external_id: str(place.id),
    name: str(place.displayName?.text),
    category: str(place.primaryTypeDisplayName?.text) ??
      str(place.primaryType)?.replaceAll("_", " ") ?? null,
    city: component(place, "locality") ?? component(place, "postal_town"),
    rating: place.rating ?? null,
    reviews: place.userRatingCount ?? 0,
    has_website: website !== null,
    website,
    phone: str(place.internationalPhoneNumber) ?? str(place.nationalPhoneNumber),
    email: null,
  };
}
