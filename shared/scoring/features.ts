/**
 * The lead-scoring feature vector: ONE function builds it for training and
 * for scoring, so the two can never drift (docs/lead-scoring.md §Features).
 *
 * Missing values are filled the seed pipeline's way (`fillna` with a
 * constant), one documented constant per feature. Where 0 would be a real,
 * meaningful value (a reply after 0 hours, contact today) the constant is −1,
 * outside the feature's range, so that a tree can split "missing" off.
 *
 * @module
 */

/** The fields of a lead the features read (a `businesses` row). */
export interface FeatureSource {
  category: string | null;
  city: string | null;
  rating: number | null;
  reviews: number;
  has_website: boolean;
  phone_valid: boolean | null;
  email_confidence_score: number | null;
  response_time_hours: number | null;
  last_contacted: Date | null;
  created_at: Date;
}

/** Category and city codes learnt from the training rows (stored with the model). */
export interface Vocabulary {
  categories: string[];
  cities: string[];
}

/** The feature names, in vector order. The first seven are the seed pipeline's. */
export const FEATURE_NAMES = [
  "rating",
  "reviews",
  "no_website",
  "phone_valid",
  "email_confidence",
  "days_since_created",
  "response_time_hours",
  "days_since_last_contact",
  "category",
  "city",
] as const;

/** A feature name. */
export type FeatureName = (typeof FEATURE_NAMES)[number];

/**
 * The populations a model serves (docs/lead-scoring.md §Populations):
 * `replied` — leads with a recorded reply (a response time); `pre_reply` —
 * every other lead, still waiting for a reply.
 */
export const POPULATIONS = ["pre_reply", "replied"] as const;

/** A population. */
export type Population = (typeof POPULATIONS)[number];

/**
 * The features each population's model reads. The replied model reads all.
 * The pre-reply model reads only what is known about a lead before it
 * replies, as it was then (point in time): not the response time (it exists
 * only after a reply), not the days since the last contact (contact stops
 * when a lead replies or opts out, so on labelled leads it encodes the
 * outcome), and not the days since creation (a labelled lead is old because
 * it had time to reach an outcome; a lead waiting for a reply is days old, a
 * value the model would never have seen on its training rows).
 */
export const POPULATION_FEATURES: Readonly<Record<Population, readonly FeatureName[]>> = {
  pre_reply: [
    "rating",
    "reviews",
    "no_website",
    "phone_valid",
    "email_confidence",
    "category",
    "city",
  ],
  replied: FEATURE_NAMES,
};

/** The population whose model scores `lead`: replied once a response time is recorded. */
export function populationOf(lead: Pick<FeatureSource, "response_time_hours">): Population {
  return lead.response_time_hours === null ? "pre_reply" : "replied";
}

/** The values of `names` from a full vector (FEATURE_NAMES order), in `names` order. */
export function selectFeatures(vector: readonly number[], names: readonly string[]): number[] {
  return names.map((name) => vector[FEATURE_NAMES.indexOf(name as FeatureName)]!);
}

/** The fill value of each feature when its source is NULL. */
export const FILL_VALUES: Readonly<Record<FeatureName, number>> = {
  // No rating (no reviews yet): 0, below every real rating (1–5).
  rating: 0,
  reviews: 0,
  no_website: 0,
  // Unknown phone validity counts as not valid, as fillna(0) on a boolean column does.
  phone_valid: 0,
  // No email found: confidence 0.
  email_confidence: 0,
  days_since_created: 0,
  // Never replied: −1, since 0 would read as an instant reply.
  response_time_hours: -1,
  // Never contacted: −1, since 0 would read as contacted today.
  days_since_last_contact: -1,
  // Unknown or unseen category/city: −1, apart from every learnt code.
  category: -1,
  city: -1,
};

const DAY_MS = 86_400_000;

/** A row for {@linkcode buildVocabulary}: labelled when `converted` is given. */
export type VocabularyRow = Pick<FeatureSource, "category" | "city"> & { converted?: boolean };

/**
 * The distinct non-null categories and cities of `rows` (normalised). Without
 * labels, sorted alphabetically. With labels (the training rows), each list
 * is ordered by its smoothed conversion rate ((clients + 1) / (rows + 2)),
 * ties alphabetically: for a binary outcome the best split of a categorical
 * feature is then a threshold on its code (Breiman's ordering), so a tree
 * separates the trades that buy from those that do not in one split instead
 * of a chain of range splits over alphabetical codes (docs/lead-scoring.md
 * §Features). Only the training rows set the order; the vocabulary is stored
 * with the model, so scoring uses the same codes.
 */
export function buildVocabulary(rows: readonly VocabularyRow[]): Vocabulary {
  const order = (key: (row: VocabularyRow) => string | null) => {
    const counts = new Map<string, { rows: number; converted: number }>();
    let labelled = true;
    for (const row of rows) {
      const value = key(row);
      if (value === null) continue;
      const name = normalise(value);
      const count = counts.get(name) ?? { rows: 0, converted: 0 };
      count.rows++;
      if (row.converted === undefined) labelled = false;
      else if (row.converted) count.converted++;
      counts.set(name, count);
    }
    const rate = (name: string) => {
      const count = counts.get(name)!;
      return (count.converted + 1) / (count.rows + 2);
    };
    const names = [...counts.keys()].sort();
    return labelled ? names.sort((a, b) => rate(a) - rate(b)) : names;
  };
  return { categories: order((r) => r.category), cities: order((r) => r.city) };
}

function normalise(text: string): string {
  return text.trim().toLowerCase();
}

function code(list: readonly string[], value: string | null): number | null {
  if (value === null) return null;
  const index = list.indexOf(normalise(value));
  return index < 0 ? null : index;
}

function days(from: Date | null, now: number): number | null {
  return from === null ? null : Math.max(0, (now - from.getTime()) / DAY_MS);
}

/**
 * The feature vector of `lead` as of `now` (epoch ms), in
 * {@linkcode FEATURE_NAMES} order, every NULL filled with
 * {@linkcode FILL_VALUES}. Category and city are ordinal codes into
 * `vocabulary` (sorted, so the same vocabulary always gives the same code).
 */
export function featureVector(lead: FeatureSource, vocabulary: Vocabulary, now: number): number[] {
  const raw: Record<FeatureName, number | null> = {
    rating: lead.rating,
    reviews: lead.reviews,
    no_website: lead.has_website ? 0 : 1,
    phone_valid: lead.phone_valid === null ? null : lead.phone_valid ? 1 : 0,
    email_confidence: lead.email_confidence_score,
    days_since_created: days(lead.created_at, now),
    response_time_hours: lead.response_time_hours,
    days_since_last_contact: days(lead.last_contacted, now),
    category: code(vocabulary.categories, lead.category),
    city: code(vocabulary.cities, lead.city),
  };
  return FEATURE_NAMES.map((name) => {
    const value = raw[name];
    return value === null || !Number.isFinite(value) ? FILL_VALUES[name] : value;
  });
}
