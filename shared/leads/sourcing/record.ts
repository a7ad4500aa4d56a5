/**
 * The lead record every source (Places, CSV, JSON) produces before it is
 * upserted into `businesses`, and the one function that turns a loose input
 * object (CSV strings, JSON values, a mapped Places result) into a record or
 * into human-readable reasons why not.
 *
 * @module
 */
import { z } from "zod";
import { sha256Hex } from "../../hash.ts";
import { normalizePhone } from "./phone.ts";

const MAX_INT = 2_147_483_647; // businesses.reviews is a Postgres integer
const E164 = /^\+[1-9]\d{1,14}$/;

/** A lead ready to be upserted; `(source, external_id)` identifies it. */
export const LeadRecordSchema = z.object({
  source: z.string().min(1).max(100),
  external_id: z.string().min(1).max(500),
  name: z.string().min(1).max(500),
  category: z.string().min(1).max(200).nullable(),
  city: z.string().min(1).max(200).nullable(),
  rating: z.number().min(0).max(5).nullable(),
  reviews: z.number().int().min(0).max(MAX_INT),
  has_website: z.boolean(),
  /** Not stored in `businesses` yet (no column); kept for scoring and logs. */
  website: z.url({ protocol: /^https?$/ }).max(2048).nullable().optional(),
  phone: z.string().regex(E164).nullable(),
  /** null when there was no phone at all; false when there was one we could not use. */
  phone_valid: z.boolean().nullable(),
  email: z.email().max(254).refine((e) => e === e.toLowerCase(), "must be lowercase").nullable(),
}).strict();

/** A validated lead. */
export type LeadRecord = z.infer<typeof LeadRecordSchema>;

/** A loose input: field name → whatever the source had (strings from CSV, JSON values). */
export type LeadInput = Record<string, unknown>;

/** Options for {@linkcode toLeadRecord}. */
export interface LeadRecordOptions {
  /** Overrides `input.source` (an import names its source once, not per row). */
  source?: string;
  /** Region for phone numbers without a country code, e.g. "US". @default none */
  defaultRegion?: string | null;
}

/** The outcome of {@linkcode toLeadRecord}. */
export type LeadResult = { ok: true; record: LeadRecord } | { ok: false; reasons: string[] };

/** One input that did not become a record: where it was and why. */
export interface LeadRejection {
  /** 1-based: the physical line in a CSV file, the item index + 1 in a list. */
  line: number;
  /** Every problem of the row, "; "-separated, e.g. "rating must be between 0 and 5". */
  reason: string;
}

function show(value: unknown): string {
  const s = typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

function isBlank(value: unknown): boolean {
  return value === undefined || value === null ||
    (typeof value === "string" && value.trim() === "");
}

/** Trimmed single-line text; null when blank; undefined (with a reason) when not text. */
function text(value: unknown, field: string, max: number, reasons: string[]): string | null {
  if (isBlank(value)) return null;
  if (typeof value !== "string" && typeof value !== "number") {
    reasons.push(`${field} must be text`);
    return null;
  }
  const raw = String(value);
  // Postgres text cannot hold NUL (nor a lone surrogate): the row is refused
  // here with a reason, instead of failing the whole chunk's INSERT later and
  // sending 500 good rows into retries and the DLQ.
  if (raw.includes("\0") || !raw.isWellFormed()) {
    reasons.push(`${field} must not contain NUL characters or unpaired surrogates`);
    return null;
  }
  // Quoted CSV fields may hold line breaks and runs of spaces; a name is one line.
  const s = raw.replace(/\s+/g, " ").trim();
  if (s.length > max) reasons.push(`${field} must be at most ${max} characters`);
  return s;
}

function rating(value: unknown, reasons: string[]): number | null {
  if (isBlank(value)) return null;
  // "4,5" is how half of Europe writes 4.5 in spreadsheet exports.
  const n = typeof value === "number"
    ? value
    : typeof value === "string"
    ? Number(value.trim().replace(/^(\d+),(\d+)$/, "$1.$2"))
    : NaN;
  if (!Number.isFinite(n)) {
    reasons.push(`rating must be a number (got ${show(value)})`);
    return null;
  }
  if (n < 0 || n > 5) reasons.push(`rating must be between 0 and 5 (got ${n})`);
  return n;
}

function reviews(value: unknown, reasons: string[]): number {
  if (isBlank(value)) return 0;
  let n = NaN;
  if (typeof value === "number") n = value;
  else if (typeof value === "string") {
    const t = value.trim();
    // Thousands separators as spreadsheets print them: "1,234", "1 234".
    if (/^\d+$/.test(t) || /^\d{1,3}([, ]\d{3})+$/.test(t)) n = Number(t.replace(/[, ]/g, ""));
  }
  if (!Number.isInteger(n) || n < 0 || n > MAX_INT) {
    reasons.push(`reviews must be a whole number of at least 0 (got ${show(value)})`);
    return 0;
  }
  return n;
}

const TRUE_WORDS = new Set(["true", "yes", "y", "1", "t"]);
const FALSE_WORDS = new Set(["false", "no", "n", "0", "f"]);

/** true/false, null when blank, undefined when not a boolean word. */
function bool(value: unknown): boolean | null | undefined {
  if (isBlank(value)) return null;
  if (typeof value === "boolean") return value;
  const word = String(value).trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  return undefined;
}

function website(value: string, reasons: string[]): string | null {
  // Exports often drop the scheme ("joespizza.com"); https is the safe guess.
  const candidate = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`;
  if (!URL.canParse(candidate)) {
    reasons.push(`website must be an http(s) URL (got ${show(value)})`);
    return null;
  }
  const url = new URL(candidate);
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.hostname.includes(".")) {
    reasons.push(`website must be an http(s) URL (got ${show(value)})`);
    return null;
  }
  return url.href;
}

const EMAIL = z.email();

function email(value: unknown, reasons: string[]): string | null {
  const raw = text(value, "email", 254, reasons);
  if (raw === null) return null;
  const address = raw.replace(/^mailto:/i, "").toLowerCase();
  if (!EMAIL.safeParse(address).success) {
    reasons.push(`email is not a valid address (got ${show(raw)})`);
    return null;
  }
  return address;
}

/** Case, full-width forms, punctuation and spacing do not make a different business. */
function identityPart(value: string | null): string {
  // Apostrophes vanish rather than split words: "Joe's" and "Joes" are one name.
  return (value ?? "").normalize("NFKC").toLowerCase().replace(/['\u2019`]/g, "")
    .replace(/[^\p{L}\p{N}]+/gu, " ").trim();
}

/**
 * The stable id of a lead whose source has none: `sha256:` + SHA-256 of the
 * normalised name, city and E.164 phone. Re-importing the same file gives the
 * same ids, so reruns update rather than duplicate. A row whose phone changes
 * gets a new id: without a source id that is the best identity available.
 */
export function deriveExternalId(
  name: string,
  city: string | null,
  phone: string | null,
): Promise<string> {
  const key = [identityPart(name), identityPart(city), phone ?? ""].join("\u001f");
  return sha256Hex(key).then((hex) => `sha256:${hex}`);
}

/**
 * Turns a loose input into a {@linkcode LeadRecord}, or lists every reason it
 * cannot. Blank values become null (or 0 reviews); `has_website` defaults to
 * whether a website is given; a phone that cannot be parsed is kept out
 * (`phone: null, phone_valid: false`) without rejecting the lead; a missing
 * `external_id` is derived with {@linkcode deriveExternalId}.
 */
export async function toLeadRecord(
  input: LeadInput,
  options: LeadRecordOptions = {},
): Promise<LeadResult> {
  const reasons: string[] = [];
  const source = text(options.source ?? input.source, "source", 100, reasons);
  if (source === null) reasons.push("source is required");
  const name = text(input.name, "name", 500, reasons);
  if (name === null) reasons.push("name is required");
  const category = text(input.category, "category", 200, reasons);
  const city = text(input.city, "city", 200, reasons);

  // A `website` column that holds yes/no is a has_website flag, not a URL.
  const websiteText = text(input.website, "website", 2048, reasons);
  const websiteFlag = websiteText === null ? null : bool(websiteText);
  const url = websiteText !== null && websiteFlag === undefined
    ? website(websiteText, reasons)
    : null;
  let hasWebsite = bool(input.has_website);
  if (hasWebsite === undefined) {
    reasons.push(`has_website must be true or false (got ${show(input.has_website)})`);
  } else if (hasWebsite === false && url !== null) {
    reasons.push("has_website is false but a website is given");
  }
  hasWebsite ??= websiteFlag ?? (websiteText !== null);

  let phone: string | null = null;
  let phoneValid: boolean | null = null;
  if (!isBlank(input.phone)) {
    const normalized = normalizePhone(input.phone, options.defaultRegion);
    phone = normalized.e164;
    phoneValid = normalized.valid;
  }

  const candidate = {
    source: source ?? "",
    external_id: "",
    name: name ?? "",
    category,
    city,
    rating: rating(input.rating, reasons),
    reviews: reviews(input.reviews, reasons),
    has_website: hasWebsite ?? false,
    website: url,
    phone,
    phone_valid: phoneValid,
    email: email(input.email, reasons),
  };
  const externalId = text(input.external_id, "external_id", 500, reasons);
  if (reasons.length > 0) return { ok: false, reasons };
  candidate.external_id = externalId ?? await deriveExternalId(candidate.name, city, phone);

  // The coercions above should only produce valid records; the schema is the
  // contract the database relies on, so it has the last word.
  const parsed = LeadRecordSchema.safeParse(candidate);
  if (!parsed.success) {
    return {
      ok: false,
      reasons: parsed.error.issues.map((i) => `${i.path.join(".") || "record"} ${i.message}`),
    };
  }
  return { ok: true, record: parsed.data };
}

/**
 * {@linkcode toLeadRecord} over a list: good inputs become records, the others
 * rejections whose `line` is the item index + 1 (a non-object item is
 * rejected too).
 */
export async function toLeadRecords(
  inputs: readonly unknown[],
  options: LeadRecordOptions = {},
): Promise<{ records: LeadRecord[]; rejected: LeadRejection[] }> {
  const records: LeadRecord[] = [];
  const rejected: LeadRejection[] = [];
  for (const [i, item] of inputs.entries()) {
    if (typeof item !== "object" || item === null || Array.isArray(item)) {
      rejected.push({ line: i + 1, reason: "item must be an object" });
      continue;
    }
    const result = await toLeadRecord(item as LeadInput, options);
    if (result.ok) records.push(result.record);
    else rejected.push({ line: i + 1, reason: result.reasons.join("; ") });
  }
  return { records, rejected };
}
