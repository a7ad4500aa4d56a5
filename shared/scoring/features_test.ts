import assert from "node:assert/strict";
import { buildVocabulary, FEATURE_NAMES, featureVector, FILL_VALUES } from "./features.ts";

const NOW = Date.parse("2026-12-01T00:00:00Z");

Deno.test("featureVector() fills every NULL with its documented constant", () => {
  const vector = featureVector(
    {
      category: null,
      city: "Nowhere",
      rating: null,
      reviews: 0,
      has_website: true,
      phone_valid: null,
      email_confidence_score: null,
      response_time_hours: null,
      last_contacted: null,
      created_at: new Date(NOW),
    },
    { categories: ["plumber"], cities: ["austin"] },
    NOW,
  );
  assert.deepEqual(vector, FEATURE_NAMES.map((f) => f === "no_website" ? 0 : FILL_VALUES[f]));
});

Deno.test("featureVector() encodes the seed's features, days and vocabulary codes", () => {
  const vocabulary = buildVocabulary([
    { category: "Plumber", city: "Austin" },
    { category: "dentist", city: null },
  ] as never);
  assert.deepEqual(vocabulary, { categories: ["dentist", "plumber"], cities: ["austin"] });
  const vector = featureVector(
    {
      category: " plumber",
      city: "AUSTIN",
      rating: 4.5,
      reviews: 12,
      has_website: false,
      phone_valid: true,
      email_confidence_score: 0.8,
      response_time_hours: 3,
      last_contacted: new Date(NOW - 2 * 86_400_000),
      created_at: new Date(NOW - 10 * 86_400_000),
    },
    vocabulary,
    NOW,
  );
  assert.deepEqual(vector, [4.5, 12, 1, 1, 0.8, 10, 3, 2, 1, 0]);
});

Deno.test("buildVocabulary() orders labelled rows' codes by conversion rate, ties alphabetically", () => {
  const row = (category: string, city: string, converted: boolean) => ({
    category,
    city,
    converted,
  });
  const vocabulary = buildVocabulary([
    row("plumber", "Austin", true),
    row("Plumber", "Denver", true),
    row("restaurant", "Austin", false),
    row("restaurant", "Denver", false),
    row("dentist", "Austin", true),
    row("dentist", "Denver", false),
    row("cafe", "Denver", false),
    row("cafe", "Austin", false),
  ]);
  // Rates (smoothed): restaurant 1/4, cafe 1/4, dentist 2/4, plumber 3/4;
  // Denver 2/6, Austin 3/6.
  assert.deepEqual(vocabulary, {
    categories: ["cafe", "restaurant", "dentist", "plumber"],
    cities: ["denver", "austin"],
  });
});
