/**
 * The lead-source area: the Places provider and phone-number normalisation
 * (shared/leads/).
 *
 * @module
 */
import { z } from "zod";
import { defineArea, httpUrl } from "./spec.ts";

/** Where leads come from and how their phone numbers are read. */
export const leads = defineArea(
  "Lead sources",
  {
    PLACES_API_KEY: {
      description: "Google Places API key for the `places` lead provider",
      optional: true,
      secret: true,
      schema: z.string().min(1),
    },
    PLACES_BASE_URL: {
      description: "Places API base URL (tests point it at a local replay server)",
      default: "https://places.googleapis.com",
      schema: httpUrl,
    },
    PLACES_QPS: {
      description: "Requests per second the places provider sends at most",
      default: "5",
      schema: z.coerce.number().positive().max(1000),
    },
    DEFAULT_PHONE_REGION: {
      description: "Region for phone numbers without a country code (ISO 3166 alpha-2)",
      default: "US",
      schema: z.string().regex(/^[A-Z]{2}$/),
    },
  },
  [],
  (v) => ({
    places: {
      apiKey: v.PLACES_API_KEY ?? null,
      baseUrl: v.PLACES_BASE_URL,
      qps: v.PLACES_QPS,
    },
    defaultPhoneRegion: v.DEFAULT_PHONE_REGION,
  }),
);
