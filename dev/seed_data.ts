/**
 * Demo data for `deno task seed`: pure generators, no I/O, no clock, no
 * Math.random. Lead `i` of seed `s` depends only on (s, i) and the anchor
 * time `now`, so a bigger `--leads` extends a set without changing it, and the
 * same arguments always give the same rows (ids included).
 *
 * Generative model (the later lead-scoring model trains on its outcomes):
 *
 * 1. Features. category (20) and city (15, weighted by size); rating ~
 *    N(4.2 + category shift, 0.45) in [1, 5] (null with no reviews); reviews ~
 *    lognormal around the category's median; has_website ~ B(0.18); phone
 *    present ~ B(0.94), valid ~ B(0.88); email present ~ B(0.92 with a website,
 *    0.78 without), its confidence high when found on a site or listing and low
 *    when guessed.
 * 2. A latent quality `s` = 3·q(features) + N(0, 0.3), where q (see
 *    latentQuality) mixes interactions and non-linear shapes: the trade ×
 *    whether it has a website, a rating that counts only with enough reviews
 *    (and peaks at 4.5), a sweet spot in the review count, a step in the email
 *    confidence, a valid phone, the city. Plus an urgency `u` ~ N(0, 1) that
 *    no feature shows before a reply (docs/lead-scoring.md §What the demo
 *    data encodes).
 * 3. Outcomes along the state machine, each step a logistic draw:
 *    contacted (every lead with an email, 2–72 h after it was found) →
 *    responded with σ(1.1·s + 0.5·u − 1.2), after
 *    lognormal(16 h · e^(−0.9·u − 0.2·s), 0.35) hours (a fast reply is an
 *    urgent one) → meeting_scheduled with σ(s + 1.6·u − 0.3) → client with
 *    σ(s + 1.2·u − 0.6). Non-responders get two follow-ups (days 3 and 7)
 *    and opt out (not_interested, half of them unsubscribing) with 0.18;
 *    decliners after a reply 0.75 and after a meeting 0.65 (40 % of those
 *    cancel the appointment first). Guessed addresses (confidence < 0.35)
 *    hard-bounce with 0.12. With seed 1 this gives ~20 % replies, ~15 %
 *    meetings and ~11 % clients among contacted leads.
 * 4. Time. Leads are found uniformly over the 90 days before `now`; a step
 *    that would happen after `now` has not happened yet, so the lead stays at
 *    the last state reached (every prefix of a legal path is legal).
 *
 * `lead_score` is the platform's current heuristic (shared/scoring/heuristic.ts):
 * a weighted sum of the seed pipeline's features, unchanged. It gets the
 * direction of most effects right and none of their shapes or interactions,
 * and cannot see category, city or the reply's speed: that is what a trained
 * model has to learn to beat it.
 *
 * Safety: every address is under the reserved `.example` TLD (RFC 2606), so
 * no seeded lead can receive a real email; phone numbers are random.
 *
 * @module
 */
import { heuristicScore } from "../shared/scoring/heuristic.ts";

/** The states of businesses.outreach_status. */
export type OutreachStatus =
  | "new"
  | "contacted"
  | "responded"
  | "meeting_scheduled"
  | "client"
  | "not_interested";

/** The legal next states of each outreach status (the seed never takes another edge). */
export const LEGAL_TRANSITIONS: Readonly<Record<OutreachStatus, readonly OutreachStatus[]>> = {
  new: ["contacted"],
  contacted: ["responded", "not_interested"],
  responded: ["meeting_scheduled", "not_interested"],
  meeting_scheduled: ["client", "not_interested"],
  client: [],
  not_interested: [],
};

/** Options of the generators. */
export interface GenerateOptions {
  /** PRNG seed, an unsigned 32-bit integer. */
  seed: number;
  /** End of the generated history, epoch ms (the CLI uses the start of the current UTC day). */
  now: number;
  /** `businesses.source` and `lead_events.source`, and the owner mark of suppressions. @default "seed" */
  source?: string;
}

/** A `businesses` row; times are epoch ms. */
export interface BusinessRow {
  id: string;
  name: string;
  category: string;
  city: string;
  rating: number | null;
  reviews: number;
  has_website: boolean;
  phone: string | null;
  phone_valid: boolean | null;
  email: string | null;
  email_confidence_score: number | null;
  outreach_status: OutreachStatus;
  last_contacted: number | null;
  response_time_hours: number | null;
  lead_score: number;
  source: string;
  external_id: string;
  created_at: number;
  updated_at: number;
}

/** A `lead_events` row. */
export interface LeadEventRow {
  id: string;
  time: number;
  lead_id: string;
  event_type: string;
  event_data: Record<string, unknown>;
  source: string;
}

/** An `email_messages` row (always sent, provider "seed"). */
export interface EmailMessageRow {
  id: string;
  business_id: string;
  to_address: string;
  template: string;
  /** UTC day of `sent_at`, `YYYY-MM-DD`. */
  send_day: string;
  subject: string;
  message_id: string;
  sent_at: number;
}

/** An `appointments` row. */
export interface AppointmentRow {
  id: string;
  business_id: string;
  starts_at: number;
  duration_min: number;
  attendee_email: string;
  /** UTC day of `starts_at`. */
  day: string;
  status: "booked" | "cancelled";
  created_at: number;
}

/**
 * An `email_suppressions` row. The table has no source column, so `reason` is
 * `<source>:<reason>` (e.g. `seed:unsubscribed`): that is how a reset finds
 * the suppressions it owns and no others.
 */
export interface SuppressionRow {
  address: string;
  reason: string;
  created_at: number;
}

/** One lead and everything that happened to it. */
export interface SeedLead {
  business: BusinessRow;
  /** In strictly increasing time order. */
  events: LeadEventRow[];
  emails: EmailMessageRow[];
  appointment: AppointmentRow | null;
  suppression: SuppressionRow | null;
}

// ---------------------------------------------------------------- randomness

type Rng = () => number;

/** sfc32 (Chris Doty-Humphrey's Small Fast Counter): 128-bit state, passes PractRand. */
function sfc32(a: number, b: number, c: number, d: number): Rng {
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** cyrb53-style string hash to 32 bits; `salt` gives independent words. */
function hash32(text: string, salt: number): number {
  let h1 = 0xdeadbeef ^ salt;
  let h2 = 0x41c6ce57 ^ salt;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (h1 ^ h2) >>> 0;
}

/** An independent stream per key: the key names the seed and the lead. */
function rngFor(key: string): Rng {
  const rng = sfc32(hash32(key, 1), hash32(key, 2), hash32(key, 3), hash32(key, 4));
  for (let i = 0; i < 12; i++) rng();
  return rng;
}

function between(r: Rng, lo: number, hi: number): number {
  return lo + (hi - lo) * r();
}
/** An integer in [lo, hi]. */
function int(r: Rng, lo: number, hi: number): number {
  return lo + Math.floor((hi - lo + 1) * r());
}
function pick<T>(r: Rng, items: readonly T[]): T {
  return items[Math.floor(items.length * r())]!;
}
function chance(r: Rng, p: number): boolean {
  return r() < p;
}
function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}
function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}
function round(x: number, digits: number): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

function normal(r: Rng, mean: number, sd: number): number {
  const u = 1 - r(); // (0, 1]: log(0) is -Infinity
  return mean + sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** A version-4-shaped UUID drawn from `r`. */
function uuid(r: Rng): string {
  const hex = Array.from({ length: 32 }, () => Math.floor(r() * 16).toString(16));
  hex[12] = "4";
  hex[16] = "89ab"[Math.floor(r() * 4)]!;
  const h = hex.join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------- vocabulary

interface City {
  name: string;
  areaCodes: readonly string[];
  /** Relative number of leads. */
  weight: number;
  /** Standard-time UTC offset in hours (DST ignored: meetings land within an hour). */
  utcOffset: number;
  /** Additive effect on the latent quality (local market: growing cities compete online). */
  effect: number;
}

/** Parses a `|`-separated table, one row a line; `#` lines are comments. */
function table(text: string): string[][] {
  return text.trim().split("\n").filter((l) => !l.trimStart().startsWith("#"))
    .map((line) => line.split("|").map((cell) => cell.trim()));
}

const CITIES: readonly City[] = table(`
  # name         | area codes  | weight | UTC offset | effect
  Austin         | 512 737     | 9      | -6         | 0.4
  Denver         | 303 720     | 8      | -7         | 0.3
  Portland       | 503 971     | 7      | -8         | 0.1
  Nashville      | 615 629     | 7      | -6         | 0.3
  Raleigh        | 919 984     | 5      | -5         | 0.2
  Phoenix        | 602 480 623 | 10     | -7         | 0
  San Diego      | 619 858     | 9      | -8         | -0.1
  Columbus       | 614 380     | 7      | -5         | 0
  Tampa          | 813         | 6      | -5         | -0.2
  Minneapolis    | 612 763     | 6      | -6         | 0.1
  Charlotte      | 704 980     | 7      | -5         | 0.1
  Salt Lake City | 801 385     | 4      | -7         | 0.3
  Kansas City    | 816         | 5      | -6         | -0.3
  Sacramento     | 916 279     | 5      | -8         | -0.3
  Richmond       | 804         | 4      | -5         | -0.4
`).map(([name, codes, weight, offset, effect]) => ({
  name: name!,
  areaCodes: codes!.split(" "),
  weight: Number(weight),
  utcOffset: Number(offset),
  effect: Number(effect),
}));
const CITY_WEIGHT = CITIES.reduce((sum, c) => sum + c.weight, 0);

interface Category {
  id: string;
  /** Name endings, e.g. "Plumbing & Drain". */
  kinds: readonly string[];
  /** Median review count. */
  reviews: number;
  /** Shift of the mean rating. */
  rating: number;
  /**
   * Additive effect on the latent quality without a website and with one: how
   * much the trade needs what Pleasant Cove sells. Trades live on "near me"
   * searches and buy a first site; practices buy redesigns and online
   * booking; salons and food places get by with booking apps, delivery apps
   * and social pages.
   */
  needWithout: number;
  needWith: number;
}

const CATEGORIES: readonly Category[] = table(`
  # id             | median reviews | rating shift | no site | site | name endings
  plumber          | 45             | 0            | 1.0     | -0.5 | Plumbing, Plumbing & Drain, Rooter
  electrician      | 35             | 0.05         | 0.9     | -0.5 | Electric, Electrical Services
  hvac             | 60             | 0            | 0.9     | -0.4 | Heating & Air, HVAC, Comfort Systems
  roofer           | 30             | -0.1         | 0.8     | -0.6 | Roofing, Roofing & Gutters
  landscaper       | 25             | 0            | 0.6     | -0.7 | Landscaping, Lawn & Garden
  cleaning_service | 40             | 0            | 0.5     | -0.7 | Cleaning Co., Maid Service
  locksmith        | 20             | -0.2         | 0.8     | -0.6 | Locksmith, Lock & Key
  auto_repair      | 90             | -0.15        | 0.4     | -0.6 | Auto Repair, Automotive, Auto Care
  dentist          | 120            | 0.2          | 0.2     | 0.6  | Dental, Family Dentistry, Smiles
  chiropractor     | 55             | 0.25         | 0.1     | 0.5  | Chiropractic, Spine & Wellness
  veterinarian     | 150            | 0.1          | 0.1     | 0.4  | Animal Hospital, Veterinary Clinic
  salon            | 80             | 0.1          | -0.3    | -0.8 | Salon, Hair Studio, Beauty Bar
  barber           | 70             | 0.15         | -0.4    | -0.9 | Barbershop, Barber Co.
  nail_salon       | 60             | -0.1         | -0.5    | -0.9 | Nails, Nail Spa, Nail Lounge
  fitness_studio   | 50             | 0.15         | -0.1    | -0.5 | Fitness, Yoga Studio, Pilates
  pet_grooming     | 45             | 0.05         | -0.2    | -0.7 | Pet Grooming, Dog Spa
  florist          | 40             | 0.1          | -0.2    | -0.8 | Flowers, Florist, Floral Design
  bakery           | 110            | 0.15         | -0.7    | -1.0 | Bakery, Bake Shop, Bakehouse
  cafe             | 160            | 0.05         | -0.9    | -1.1 | Cafe, Coffee House, Coffee Co.
  restaurant       | 220            | -0.1         | -1.0    | -1.2 | Kitchen, Grill, Bistro, Diner
`).map(([id, reviews, rating, needWithout, needWith, kinds]) => ({
  id: id!,
  kinds: kinds!.split(", "),
  reviews: Number(reviews),
  rating: Number(rating),
  needWithout: Number(needWithout),
  needWith: Number(needWith),
}));

const SURNAMES = "Alvarez Anderson Baker Bennett Brooks Castillo Chen Collins Delgado Dunn Evans " +
  "Fischer Foster Garcia Gupta Hayes Henderson Hughes Jensen Kim Kowalski Larsen Lopez Malone " +
  "Martinez McCarthy Morales Murphy Nguyen Novak Ortiz Patel Peterson Price Ramirez Reyes Russo " +
  "Sanders Schmidt Silva Sullivan Tran Turner Walsh Weber Whitaker Young Zimmerman";
const FIRST_NAMES = "Ana Ben Carla Dave Elena Frank Grace Hector Irene Jake Kim Luis Maria Nate " +
  "Olivia Pete Rosa Sam Tina Vince Wendy Yusuf";
const PLACES = "Riverside, Oak Hill, Maple, Summit, Harbor, Northside, Southside, Eastside, " +
  "Westgate, Cedar, Willow Creek, Main Street, Old Town, Lakeside, Pine Ridge, Midtown";
const ADJECTIVES = "Reliable, Precision, Golden, Evergreen, Sunrise, Hometown, Premier, Bright, " +
  "Friendly, Lucky, True North, Cornerstone, Blue Sky, Honest, Urban, Happy";
const VOCABULARY = {
  surnames: SURNAMES.split(" "),
  firstNames: FIRST_NAMES.split(" "),
  places: PLACES.split(", "),
  adjectives: ADJECTIVES.split(", "),
};
const FREEMAIL = ["gmail.example", "yahoo.example", "outlook.example", "icloud.example"];
const LOCAL_PARTS = ["info", "contact", "hello", "office", "service", "booking"];

// ---------------------------------------------------------------- features

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** How far back the history goes. */
export const HISTORY_DAYS = 90;

interface Features {
  category: Category;
  city: City;
  name: string;
  rating: number | null;
  reviews: number;
  hasWebsite: boolean;
  phone: string | null;
  phoneValid: boolean | null;
  email: string | null;
  emailConfidence: number | null;
}

function pickCity(r: Rng): City {
  let x = r() * CITY_WEIGHT;
  for (const city of CITIES) {
    x -= city.weight;
    if (x < 0) return city;
  }
  return CITIES[CITIES.length - 1]!;
}

function businessName(r: Rng, category: Category, city: City): string {
  const kind = pick(r, category.kinds);
  const p = r();
  if (p < 0.3) return `${pick(r, VOCABULARY.surnames)} ${kind}`;
  if (p < 0.4) return `${pick(r, VOCABULARY.surnames)} & Sons ${kind}`;
  if (p < 0.6) return `${pick(r, VOCABULARY.firstNames)}'s ${kind}`;
  if (p < 0.75) return `${pick(r, VOCABULARY.places)} ${kind}`;
  if (p < 0.82) return `${city.name} ${kind}`;
  return `${pick(r, VOCABULARY.adjectives)} ${kind}`;
}

/** E.164 phone in the city's area codes; invalid ones look like typical scraping errors. */
function phoneNumber(r: Rng, city: City, valid: boolean): string {
  const area = pick(r, city.areaCodes);
  let exchange = int(r, 200, 999);
  if (exchange % 100 === 11 || exchange === 555) exchange += 1; // N11 and 555 are not assignable
  const line = String(int(r, 0, 9999)).padStart(4, "0");
  if (valid) return `+1${area}${exchange}${line}`;
  const flaw = int(r, 0, 2);
  if (flaw === 0) return `+1${area}${exchange}${line.slice(0, 3)}`; // a digit short
  if (flaw === 1) return `+1${area}${int(r, 100, 199)}${line}`; // exchange cannot start with 1
  return `+1${int(r, 100, 199)}${exchange}${line}`; // area code cannot start with 1
}

function slug(name: string): string {
  return name.toLowerCase().replace(/&/g, "and").replace(/[^a-z0-9]/g, "").slice(0, 30);
}

function drawFeatures(r: Rng): Features {
  const category = pick(r, CATEGORIES);
  const city = pickCity(r);
  const name = businessName(r, category, city);
  const reviews = chance(r, 0.04)
    ? 0
    : Math.max(1, Math.round(Math.exp(normal(r, Math.log(category.reviews), 1.0))));
  const rating = reviews === 0
    ? null
    : round(clamp(normal(r, 4.2 + category.rating, 0.45), 1, 5), 1);
  const hasWebsite = chance(r, 0.18);
  const hasPhone = chance(r, 0.94);
  const phoneValid = hasPhone ? chance(r, 0.88) : null;
  const phone = hasPhone ? phoneNumber(r, city, phoneValid!) : null;
  let email: string | null = null;
  let emailConfidence: number | null = null;
  if (chance(r, hasWebsite ? 0.92 : 0.78)) {
    const guessed = chance(r, hasWebsite ? 0.3 : 0.35);
    if (hasWebsite) email = `${pick(r, LOCAL_PARTS)}@${slug(name)}.example`;
    else {
      const digits = chance(r, 0.3) ? String(int(r, 1, 99)) : "";
      email = `${slug(name)}${digits}@${pick(r, FREEMAIL)}`;
    }
    // Found on the site or a listing: confident; guessed from a pattern: not.
    emailConfidence = round(
      guessed ? between(r, 0.1, 0.5) : between(r, hasWebsite ? 0.75 : 0.55, 0.99),
      2,
    );
  }
  return {
    category,
    city,
    name,
    rating,
    reviews,
    hasWebsite,
    phone,
    phoneValid,
    email,
    emailConfidence,
  };
}

/**
 * The observable part of the latent quality: how a business's features move
 * its chance of buying, the way the demo data encodes it (docs/lead-scoring.md
 * §What the demo data encodes). Interactions and non-linear shapes, on purpose
 * beyond what a hand-set weighted sum captures:
 *
 * - need: the trade × whether it has a website (Category.needWithout/needWith);
 * - reputation: the rating counts only as far as enough reviews back it (a
 *   ramp from 10 to 40 reviews), then strongly;
 * - size: a sweet spot around 60 reviews (established, not yet saturated with
 *   work); very small businesses lack budget, very busy ones lack need;
 * - reachability: a valid phone, and an address that was found rather than
 *   guessed (a step: beyond "found", more confidence adds little);
 * - the local market (City.effect).
 */
function latentQuality(f: Features): number {
  const need = f.hasWebsite ? f.category.needWith : f.category.needWithout;
  const backing = clamp((f.reviews - 10) / 30, 0, 1);
  const reputation = f.rating === null
    ? 0
    : backing * (f.rating <= 4.5 ? 1.6 * (f.rating - 4.2) : 0.48 - 2 * (f.rating - 4.5));
  const size = -1.5 * (Math.log10(1 + f.reviews) - 1.8) ** 2;
  const phone = f.phoneValid ? 0.3 : -0.4;
  const email = f.emailConfidence === null
    ? -1
    : f.emailConfidence < 0.5
    ? -0.7
    : 0.3 * (f.emailConfidence - 0.75);
  return need + reputation + size + phone + email + f.city.effect;
}

/** The platform's heuristic (shared/scoring/heuristic.ts: the observable signal, rougher weights). */
function leadScore(f: Features): number {
  return heuristicScore({
    rating: f.rating,
    reviews: f.reviews,
    has_website: f.hasWebsite,
    phone_valid: f.phoneValid,
    email_confidence_score: f.emailConfidence,
  });
}

// ---------------------------------------------------------------- history

function isoDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}
function toSecond(t: number): number {
  return Math.floor(t / 1000) * 1000;
}

/** The half-hour `slot` (0 = 9:00 … 15 = 16:30 local) on the first weekday `days` after `after`. */
function meetingSlot(after: number, city: City, days: number, slot: number): number {
  let day = Math.floor((after + city.utcOffset * HOUR) / DAY) + days;
  while ([0, 6].includes(new Date(day * DAY).getUTCDay())) day++;
  return day * DAY + (9 * 60 + slot * 30) * 60_000 - city.utcOffset * HOUR;
}

const SUBJECTS: Record<string, (name: string) => string> = {
  outreach_intro: (n) => `A website for ${n}?`,
  outreach_follow_up_1: (n) => `Following up: ${n} online`,
  outreach_follow_up_2: (n) => `Last note about a website for ${n}`,
  meeting_confirmation: (n) => `Confirmed: your call with Pleasant Cove (${n})`,
};

/** Lead `index` (0-based) of the set described by `options`. */
export function generateLead(index: number, options: GenerateOptions): SeedLead {
  const source = options.source ?? "seed";
  const r = rngFor(`lead|${options.seed}|${index}`);
  // Ids come from their own stream, keyed by the source too: two sources
  // seeded alike get the same data under different ids.
  const ids = rngFor(`id|${source}|${options.seed}|${index}`);
  const f = drawFeatures(r);
  const externalId = `${options.seed}-${String(index).padStart(6, "0")}`;
  const id = uuid(ids);
  // Steps due after the horizon have not happened yet.
  const horizon = options.now - 10 * 60_000;
  const createdAt = toSecond(options.now - between(r, 0, HISTORY_DAYS * DAY));
  const s = 3 * latentQuality(f) + normal(r, 0, 0.3);
  // Urgency: how pressing the need is right now. Nothing before a reply shows
  // it; the reply's speed does (a fast reply is an interested one).
  const u = normal(r, 0, 1);

  const events: LeadEventRow[] = [];
  const emails: EmailMessageRow[] = [];
  let appointment: AppointmentRow | null = null;
  let suppression: SuppressionRow | null = null;
  let status: OutreachStatus = "new";
  let responseTime: number | null = null;
  let last = 0;
  const log = (time: number, type: string, data: Record<string, unknown>): number => {
    const t = Math.max(toSecond(time), last + 1000); // strictly increasing per lead
    last = t;
    events.push({
      id: uuid(ids),
      time: t,
      lead_id: id,
      event_type: type,
      event_data: data,
      source,
    });
    return t;
  };
  const move = (to: OutreachStatus, time: number) => {
    if (!LEGAL_TRANSITIONS[status].includes(to)) {
      throw new Error(`Illegal outreach transition ${status} → ${to}`);
    }
    log(time, "status_changed", { from: status, to });
    status = to;
  };
  const send = (template: string, time: number) => {
    const messageId = `<${source}.${externalId}.${emails.length}@seed.pleasantcove.example>`;
    const sentAt = log(time, "email_sent", { template, message_id: messageId });
    emails.push({
      id: uuid(ids),
      business_id: id,
      to_address: f.email!,
      template,
      send_day: isoDay(sentAt),
      subject: SUBJECTS[template]!(f.name),
      message_id: messageId,
      sent_at: sentAt,
    });
  };
  const suppress = (reason: string, time: number) => {
    const createdAt = log(time, "email_suppressed", { reason });
    suppression = { address: f.email!, reason: `${source}:${reason}`, created_at: createdAt };
  };

  const leadScoreValue = leadScore(f);
  log(createdAt, "lead_created", { source, city: f.city.name, category: f.category.id });
  log(createdAt + between(r, 1, 10) * 60_000, "lead_scored", { lead_score: leadScoreValue });

  // One draw per decision, all made up front, so that truncation by the
  // horizon never changes how much randomness a lead consumes.
  const contactAt = createdAt + between(r, 2, 72) * HOUR;
  const bounces = (f.emailConfidence ?? 1) < 0.35 && chance(r, 0.12);
  const responds = chance(r, sigmoid(1.1 * s + 0.5 * u - 1.2));
  const rtHours = round(
    clamp(Math.exp(normal(r, Math.log(16) - 0.9 * u - 0.2 * s, 0.35)), 0.25, 336),
    1,
  );
  const optsOut = chance(r, 0.18);
  const optOutAt = contactAt + between(r, 0.5, 10) * DAY;
  const followUps = [3, 7].map((d) => contactAt + (d + between(r, 0, 0.5)) * DAY);
  const meets = chance(r, sigmoid(s + 1.6 * u - 0.3));
  const declinesReply = chance(r, 0.75);
  const replyDeclineAt = between(r, 0.2, 24) * HOUR;
  const bookDelay = between(r, 1, 36) * HOUR;
  const wins = chance(r, sigmoid(s + 1.2 * u - 0.6));
  const declinesMeeting = chance(r, 0.65);
  const cancels = chance(r, 0.4);
  const afterMeeting = between(r, 1, 96) * HOUR;
  const duration = pick(r, [30, 30, 45, 60]);
  const slot = { days: int(r, 1, 7), index: int(r, 0, 15) };
  const unsubscribes = chance(r, 0.5);
  const cancelAfter = between(r, 0.1, 0.9);

  history: {
    if (f.email === null || contactAt > horizon) break history;
    send("outreach_intro", contactAt);
    move("contacted", contactAt);
    if (bounces) {
      suppress("bounced", contactAt + 5 * 60_000);
      break history;
    }
    const responseAt = responds ? contactAt + rtHours * HOUR : Infinity;
    const stop = Math.min(responseAt, optsOut && !responds ? optOutAt : Infinity, horizon);
    for (const [i, at] of followUps.entries()) {
      if (at < stop) send(`outreach_follow_up_${i + 1}`, at);
    }
    if (!responds) {
      if (optsOut && optOutAt <= horizon) {
        move("not_interested", optOutAt);
        if (unsubscribes) suppress("unsubscribed", optOutAt);
      }
      break history;
    }
    if (responseAt > horizon) break history;
    log(responseAt, "email_replied", { response_time_hours: rtHours });
    move("responded", responseAt);
    responseTime = rtHours;
    if (!meets) {
      if (declinesReply && responseAt + replyDeclineAt <= horizon) {
        move("not_interested", responseAt + replyDeclineAt);
      }
      break history;
    }
    const bookedAt = responseAt + bookDelay;
    if (bookedAt > horizon) break history;
    const startsAt = meetingSlot(bookedAt, f.city, slot.days, slot.index);
    move("meeting_scheduled", bookedAt);
    const booked = log(bookedAt, "appointment_booked", {
      starts_at: new Date(startsAt).toISOString(),
      duration_min: duration,
    });
    send("meeting_confirmation", bookedAt);
    appointment = {
      id: uuid(ids),
      business_id: id,
      starts_at: startsAt,
      duration_min: duration,
      attendee_email: f.email,
      day: isoDay(startsAt),
      status: "booked",
      created_at: booked,
    };
    const ends = startsAt + duration * 60_000;
    if (wins) {
      if (ends + afterMeeting <= horizon) move("client", ends + afterMeeting);
    } else if (declinesMeeting && cancels) {
      const cancelAt = bookedAt + (startsAt - bookedAt) * cancelAfter;
      if (cancelAt <= horizon) {
        appointment.status = "cancelled";
        log(cancelAt, "appointment_cancelled", {});
        move("not_interested", cancelAt);
      }
    } else if (declinesMeeting && ends + afterMeeting <= horizon) {
      move("not_interested", ends + afterMeeting);
    }
  }

  const business: BusinessRow = {
    id,
    name: f.name,
    category: f.category.id,
    city: f.city.name,
    rating: f.rating,
    reviews: f.reviews,
    has_website: f.hasWebsite,
    phone: f.phone,
    phone_valid: f.phoneValid,
    email: f.email,
    email_confidence_score: f.emailConfidence,
    outreach_status: status,
    last_contacted: emails.length > 0 ? emails[emails.length - 1]!.sent_at : null,
    response_time_hours: responseTime,
    lead_score: leadScoreValue,
    source,
    external_id: externalId,
    created_at: createdAt,
    updated_at: last,
  };
  return { business, events, emails, appointment, suppression };
}

/** Leads 0 … count − 1 of the set described by `options`. */
export function generateLeads(count: number, options: GenerateOptions): SeedLead[] {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot generate leads: count must be a non-negative integer, got ${count}`,
    );
  }
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw new RangeError(
      `Cannot generate leads: seed must be an unsigned 32-bit integer, got ${options.seed}`,
    );
  }
  return Array.from({ length: count }, (_, i) => generateLead(i, options));
}
