/**
 * Email templates: which ones exist, the variables each takes (the API
 * validates requests and documents OpenAPI from `TEMPLATES`), and rendering
 * to `{ subject, text, html }` with an unsubscribe footer in both parts.
 *
 * Variable values are text: they are HTML-escaped in the HTML part and never
 * interpreted as markup. URL variables must be http(s), so a value cannot
 * smuggle a `javascript:` link into an href.
 *
 * @module
 */
import { AppError } from "../errors.ts";
import {
  type Block,
  type Draft,
  followUpCopy,
  introCopy,
  meetingConfirmationCopy,
  type Vars,
} from "./template_copy.ts";

/** Every template name. */
export const TEMPLATE_NAMES = ["intro", "follow_up", "meeting_confirmation"] as const;

/** A template name. */
export type TemplateName = (typeof TEMPLATE_NAMES)[number];

/** A template's purpose and variables (variable name → description). */
export interface TemplateSpec {
  description: string;
  required: Readonly<Record<string, string>>;
  optional: Readonly<Record<string, string>>;
}

const COMMON_REQUIRED = {
  business_name: "The recipient's business, e.g. “Harbor Bakery”",
  sender_name: "The Pleasant Cove person signing the email",
} as const;

const COMMON_OPTIONAL = {
  recipient_name: "First name for the greeting; “Hi there” when absent",
  sender_title: "The sender's role, shown under their name",
} as const;

/** The templates and their variables. */
export const TEMPLATES: Readonly<Record<TemplateName, TemplateSpec>> = {
  intro: {
    description: "First contact: what Pleasant Cove offers a local business",
    required: COMMON_REQUIRED,
    optional: {
      ...COMMON_OPTIONAL,
      city: "Where the business is, e.g. “Portland”",
      website_url: "The business's current website (http or https)",
      booking_url: "Link to book a call (http or https)",
    },
  },
  follow_up: {
    description: "Reminder after an unanswered intro",
    required: COMMON_REQUIRED,
    optional: { ...COMMON_OPTIONAL, booking_url: "Link to book a call (http or https)" },
  },
  meeting_confirmation: {
    description: "Confirms a booked call with its time and how to join",
    required: {
      ...COMMON_REQUIRED,
      starts_at: "Start as an ISO 8601 instant with offset, e.g. 2026-03-03T14:00:00Z",
      duration_min: "Length in minutes (whole number, 1–480)",
    },
    optional: {
      ...COMMON_OPTIONAL,
      time_zone: "IANA zone the time is shown in, e.g. America/New_York; default UTC",
      meeting_url: "Video call link (http or https)",
      location: "Where to meet, when not online",
      agenda: "One line on what the call covers",
    },
  },
};

/** Variable values as the API passes them; `undefined` counts as absent. */
export type TemplateVariables = Readonly<Record<string, string | number | undefined>>;

/** Options of `renderTemplate`. */
export interface RenderOptions {
  /** The recipient's unsubscribe link (see unsubscribe.ts); shown in both parts. */
  unsubscribeUrl: string;
  /** Sender's postal address for the footer (CAN-SPAM asks for one in marketing mail). */
  postalAddress?: string;
}

/** A rendered message body. */
export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

/** The template name is not one of `TEMPLATE_NAMES`. */
export class UnknownTemplateError extends AppError {
  override name = "UnknownTemplateError";
  constructor(template: string) {
    super(
      "unknown-template",
      422,
      `Unknown email template "${template}"; known templates: ${TEMPLATE_NAMES.join(", ")}`,
      { details: { template, known_templates: [...TEMPLATE_NAMES] } },
    );
  }
}

/** Required variables are absent or blank. */
export class MissingTemplateVariablesError extends AppError {
  override name = "MissingTemplateVariablesError";
  readonly missing: string[];
  constructor(template: string, missing: string[]) {
    super(
      "missing-template-variables",
      422,
      `Email template "${template}" is missing variables: ${missing.join(", ")}`,
      { details: { template, missing } },
    );
    this.missing = missing;
  }
}

/** Variables are present but unusable (a bad date, URL, duration or time zone). */
export class InvalidTemplateVariablesError extends AppError {
  override name = "InvalidTemplateVariablesError";
  constructor(template: string, fields: { name: string; message: string }[]) {
    super(
      "invalid-template-variables",
      422,
      `Email template "${template}" has invalid variables: ${
        fields.map((f) => `${f.name}: ${f.message}`).join("; ")
      }`,
      { details: { template, fields } },
    );
  }
}

/** True when `name` is a template name. */
export function isTemplateName(name: string): name is TemplateName {
  return (TEMPLATE_NAMES as readonly string[]).includes(name);
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;
const URL_VARIABLES = ["website_url", "booking_url", "meeting_url"];

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

function problems(values: Map<string, string>): { name: string; message: string }[] {
  const found: { name: string; message: string }[] = [];
  for (const name of URL_VARIABLES) {
    const value = values.get(name);
    if (value && !isHttpUrl(value)) found.push({ name, message: "must be an http(s) URL" });
  }
  const startsAt = values.get("starts_at");
  if (startsAt && (!ISO_INSTANT.test(startsAt) || Number.isNaN(Date.parse(startsAt)))) {
    found.push({ name: "starts_at", message: "must be an ISO 8601 instant with offset" });
  }
  const duration = values.get("duration_min");
  if (duration && !(/^\d+$/.test(duration) && Number(duration) >= 1 && Number(duration) <= 480)) {
    found.push({ name: "duration_min", message: "must be a whole number from 1 to 480" });
  }
  const zone = values.get("time_zone");
  if (zone && !isTimeZone(zone)) {
    found.push({ name: "time_zone", message: "must be an IANA time zone" });
  }
  return found;
}

/** `starts_at` as a date line and a time range in the reader's zone. */
function meetingTime(startsAt: string, durationMin: number, timeZone: string) {
  const start = new Date(startsAt);
  const end = new Date(start.getTime() + durationMin * 60_000);
  const date = new Intl.DateTimeFormat("en-US", {
    timeZone,
    weekday: "long",
    year: "numeric",
    month: "long",
    day: "numeric",
  }).format(start);
  const clock = new Intl.DateTimeFormat("en-US", { timeZone, hour: "numeric", minute: "2-digit" });
  const zoneName = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "short" })
    .formatToParts(start).find((p) => p.type === "timeZoneName")?.value ?? timeZone;
  // ICU puts U+202F before AM/PM; plain spaces read the same in every client.
  const time = `${clock.format(start)} to ${clock.format(end)} ${zoneName}`.replace(/\u202f/g, " ");
  return { date, time };
}

const COPY: Readonly<Record<TemplateName, (v: Vars) => Draft>> = {
  intro: introCopy,
  follow_up: followUpCopy,
  meeting_confirmation: (v) =>
    meetingConfirmationCopy(
      v,
      meetingTime(v("starts_at"), Number(v("duration_min")), v("time_zone") || "UTC"),
    ),
};

/** Escapes text for HTML element content and double-quoted attributes. */
export function escapeHtml(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function textBlock(block: Block): string {
  return typeof block === "string" ? block : `${block.label}: ${block.url}`;
}

function htmlBlock(block: Block): string {
  if (typeof block !== "string") {
    return `<p><a href="${escapeHtml(block.url)}" style="color:#0f766e">${
      escapeHtml(block.label)
    }</a></p>`;
  }
  return `<p>${escapeHtml(block).replace(/\n/g, "<br>\n")}</p>`;
}

function render(draft: Draft, options: RenderOptions): RenderedEmail {
  const footer = [
    "Pleasant Cove: better websites and listings for local businesses.",
    ...(options.postalAddress ? [options.postalAddress] : []),
  ].join("\n");
  const text = [
    ...draft.blocks.map(textBlock),
    `--\n${footer}\nDon't want these emails? Unsubscribe: ${options.unsubscribeUrl}`,
  ].join("\n\n") + "\n";
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${
    escapeHtml(draft.subject)
  }</title></head>
<body style="margin:0;padding:24px;font-family:Helvetica,Arial,sans-serif;color:#1f2933;line-height:1.5">
<div style="max-width:560px;margin:0 auto">
${draft.blocks.map(htmlBlock).join("\n")}
<hr style="border:none;border-top:1px solid #e5e7eb;margin:32px 0 16px">
<p style="font-size:12px;color:#6b7280">${escapeHtml(footer).replace(/\n/g, "<br>\n")}<br>
Don't want these emails? <a href="${
    escapeHtml(options.unsubscribeUrl)
  }" style="color:#6b7280">Unsubscribe</a></p>
</div>
</body>
</html>
`;
  return { subject: draft.subject, text, html };
}

/**
 * Renders template `name`. Unknown variables are ignored (older callers may
 * send ones a template no longer uses).
 *
 * @throws UnknownTemplateError, MissingTemplateVariablesError, InvalidTemplateVariablesError
 */
export function renderTemplate(
  name: string,
  variables: TemplateVariables,
  options: RenderOptions,
): RenderedEmail {
  if (!isTemplateName(name)) throw new UnknownTemplateError(name);
  if (!isHttpUrl(options.unsubscribeUrl)) {
    throw new RangeError("renderTemplate() needs an http(s) unsubscribeUrl");
  }
  const spec = TEMPLATES[name];
  const values = new Map<string, string>();
  for (const key of [...Object.keys(spec.required), ...Object.keys(spec.optional)]) {
    const raw = variables[key];
    // Every variable is a one-liner: a newline in a name would break the layout or a header.
    const value = raw === undefined || raw === null ? "" : String(raw).replace(/\s+/g, " ").trim();
    if (value) values.set(key, value);
  }
  const missing = Object.keys(spec.required).filter((key) => !values.has(key));
  if (missing.length > 0) throw new MissingTemplateVariablesError(name, missing);
  const invalid = problems(values);
  if (invalid.length > 0) throw new InvalidTemplateVariablesError(name, invalid);

  const draft = COPY[name]((key) => values.get(key) ?? "");
  return render(draft, options);
}
