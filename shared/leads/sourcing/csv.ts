/**
 * Lead imports from files: CSV (with a header row) and JSON arrays. Bad rows
 * are returned as rejections with their 1-based line number while the good
 * rows are kept; only a file that cannot be read as a whole (no or an invalid
 * header, not UTF-8, not a JSON array, too many rows) is an error.
 *
 * @example
 * ```ts
 * const { records, rejected } = await parseLeadCsv(await req.bytes(), {
 *   source: "csv:upload", defaultRegion: "US",
 * });
 * ```
 *
 * @module
 */
import { CsvError, parse } from "csv-parse/sync";
import { LeadImportError } from "./errors.ts";
import {
  type LeadInput,
  type LeadRecord,
  type LeadRejection,
  toLeadRecord,
  toLeadRecords,
} from "./record.ts";

/** Options of {@linkcode parseLeadCsv} and {@linkcode parseLeadJson}. */
export interface LeadImportOptions {
  /** The `source` of every record, e.g. "csv:upload". */
  source: string;
  /** Region for phone numbers without a country code, e.g. "US". @default none */
  defaultRegion?: string | null;
  /** More data rows than this refuse the whole file (too-many-rows, 413). @default 10_000 */
  maxRows?: number;
}

/** What an import produced. */
export interface LeadImportResult {
  records: LeadRecord[];
  rejected: LeadRejection[];
  /** Columns (CSV) or keys (JSON) that are not lead fields and were ignored, normalised. */
  ignoredColumns: string[];
}

/** The lead fields a file may carry; `name` is the only required column. */
export const LEAD_COLUMNS = [
  "name",
  "category",
  "city",
  "rating",
  "reviews",
  "has_website",
  "website",
  "phone",
  "email",
  "external_id",
] as const;
const KNOWN = new Set<string>(LEAD_COLUMNS);
const DEFAULT_MAX_ROWS = 10_000;
const QUOTE = 34;
const COMMA = 44;

/** "External ID", "external-id" and "EXTERNAL_ID" all name `external_id`. */
function columnKey(name: string): string {
  return name.trim().toLowerCase().replace(/[\s-]+/g, "_");
}

/** One CSV record before field parsing: its text and the physical line it starts on. */
interface RawRecord {
  line: number;
  text: string;
}

/**
 * Splits CSV text into records at line breaks outside quoted fields,
 * remembering the physical line each record starts on. csv-parse's own
 * `info.lines` drifts after blank CRLF lines, and one bad quote makes it
 * swallow every following row; splitting first keeps line numbers exact and
 * a bad row's damage to that row. As in RFC 4180, only a quote at the start
 * of a field opens a quoted field; a stray one elsewhere is left for
 * csv-parse to reject together with its row.
 */
function splitRecords(text: string): RawRecord[] {
  const out: RawRecord[] = [];
  let line = 1;
  let start = 0;
  let startLine = 1;
  let quoted = false;
  let fieldStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 13) {
      const end = i;
      if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
      line++;
      if (!quoted) {
        out.push({ line: startLine, text: text.slice(start, end) });
        start = i + 1;
        startLine = line;
        fieldStart = true;
      }
    } else if (quoted) {
      if (c === QUOTE) {
        if (text.charCodeAt(i + 1) === QUOTE) i++; // "" is an escaped quote
        else quoted = false;
      }
    } else if (c === QUOTE && fieldStart) {
      quoted = true;
      fieldStart = false;
    } else {
      fieldStart = c === COMMA;
    }
  }
  if (start < text.length) out.push({ line: startLine, text: text.slice(start) });
  return out.filter((r) => r.text.trim() !== "");
}

const CSV_REASONS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: "a quoted field is never closed",
  CSV_INVALID_CLOSING_QUOTE: "a closing quote is followed by other characters",
  INVALID_OPENING_QUOTE: "a quote appears inside an unquoted field",
};

/** The fields of one record, or why it is not CSV. */
function fields(record: RawRecord): string[] | { reason: string } {
  try {
    const rows = parse(record.text, { relax_column_count: true }) as string[][];
    return rows[0] ?? [];
  } catch (err) {
    if (err instanceof CsvError) {
      return { reason: `malformed CSV: ${CSV_REASONS[err.code] ?? err.message}` };
    }
    throw err;
  }
}

const BATCH = 1000;

/**
 * {@linkcode fields} for many records. One csv-parse call costs more setup
 * than the parsing of a typical row (docs/benchmarks.md, design
 * measurements), so records are parsed
 * in batches; a batch that fails (a malformed row in it) or does not come
 * back as one row per record is parsed record by record instead.
 */
function allFields(records: RawRecord[]): (string[] | { reason: string })[] {
  const out: (string[] | { reason: string })[] = [];
  for (let i = 0; i < records.length; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    let rows: string[][] | null = null;
    try {
      rows = parse(batch.map((r) => r.text).join("\n"), {
        relax_column_count: true,
        record_delimiter: "\n",
      }) as string[][];
    } catch (err) {
      if (!(err instanceof CsvError)) throw err;
    }
    if (rows !== null && rows.length === batch.length) out.push(...rows);
    else out.push(...batch.map(fields));
  }
  return out;
}

function decode(input: string | Uint8Array, format: "csv" | "json"): string {
  if (typeof input === "string") return input.replace(/^\uFEFF/, "");
  try {
    // TextDecoder drops a UTF-8 BOM (ignoreBOM defaults to false).
    return new TextDecoder("utf-8", { fatal: true }).decode(input);
  } catch (err) {
    throw new LeadImportError(`invalid-${format}`, `${format.toUpperCase()} is not valid UTF-8`, {
      cause: err,
    });
  }
}

function checkRowCount(rows: number, maxRows: number): void {
  if (rows > maxRows) {
    throw new LeadImportError(
      "too-many-rows",
      `Import has ${rows} rows; the limit is ${maxRows}`,
      { details: { rows, max_rows: maxRows } },
    );
  }
}

/** Column index → lead field (or null to ignore), validated. */
function readHeader(header: RawRecord): { columns: (string | null)[]; ignored: string[] } {
  const names = fields(header);
  if (!Array.isArray(names)) {
    throw new LeadImportError(
      "invalid-csv",
      `Cannot read the CSV header on line ${header.line}: ${names.reason}`,
    );
  }
  const keys = names.map(columnKey);
  const seen = new Set<string>();
  const ignored: string[] = [];
  const columns = keys.map((key) => {
    if (!KNOWN.has(key)) {
      if (key !== "") ignored.push(key);
      return null;
    }
    if (seen.has(key)) {
      throw new LeadImportError("invalid-csv", `CSV header names column "${key}" twice`);
    }
    seen.add(key);
    return key;
  });
  if (!seen.has("name")) {
    throw new LeadImportError(
      "invalid-csv",
      `CSV header on line ${header.line} has no "name" column (found: ${
        keys.join(", ") || "nothing"
      }); the first row must name the columns: ${LEAD_COLUMNS.join(", ")}`,
      { details: { found: keys, expected: LEAD_COLUMNS } },
    );
  }
  return { columns, ignored };
}

/**
 * Parses a CSV file of leads. The first non-blank row is the header (column
 * names case-insensitive, see {@linkcode LEAD_COLUMNS}); a BOM, quoted fields
 * (with commas, quotes and line breaks) and CRLF are handled. A row with the
 * wrong number of fields, malformed quoting or invalid values is rejected
 * with the physical line it starts on.
 *
 * @throws {LeadImportError} "invalid-csv" without a usable header or when not
 *   UTF-8; "too-many-rows" above `maxRows` data rows
 */
export async function parseLeadCsv(
  input: string | Uint8Array,
  options: LeadImportOptions,
): Promise<LeadImportResult> {
  const raw = splitRecords(decode(input, "csv"));
  const [header, ...rows] = raw;
  if (header === undefined) {
    throw new LeadImportError("invalid-csv", "CSV is empty: a header row is required");
  }
  const { columns, ignored } = readHeader(header);
  checkRowCount(rows.length, options.maxRows ?? DEFAULT_MAX_ROWS);
  const records: LeadRecord[] = [];
  const rejected: LeadRejection[] = [];
  const parsed = allFields(rows);
  for (const [i, row] of rows.entries()) {
    const values = parsed[i]!;
    if (!Array.isArray(values)) {
      rejected.push({ line: row.line, reason: values.reason });
      continue;
    }
    if (values.length !== columns.length) {
      rejected.push({
        line: row.line,
        reason: `expected ${columns.length} fields, found ${values.length}`,
      });
      continue;
    }
    const lead: LeadInput = {};
    columns.forEach((key, column) => {
      if (key !== null) lead[key] = values[column];
    });
    const result = await toLeadRecord(lead, options);
    if (result.ok) records.push(result.record);
    else rejected.push({ line: row.line, reason: result.reasons.join("; ") });
  }
  return { records, rejected, ignoredColumns: ignored };
}

/**
 * Parses a JSON array of lead objects (text, bytes or an already parsed
 * array). Keys are matched like CSV columns; a rejection's `line` is the item
 * index + 1.
 *
 * @throws {LeadImportError} "invalid-json" when the input is not a JSON array;
 *   "too-many-rows" above `maxRows` items
 */
export async function parseLeadJson(
  input: string | Uint8Array | readonly unknown[],
  options: LeadImportOptions,
): Promise<LeadImportResult> {
  let items: unknown = input;
  if (typeof input === "string" || input instanceof Uint8Array) {
    try {
      items = JSON.parse(decode(input, "json"));
    } catch (err) {
      if (err instanceof LeadImportError) throw err;
      const message = `JSON cannot be parsed: ${(err as Error).message}`;
      throw new LeadImportError("invalid-json", message, { cause: err });
    }
  }
  if (!Array.isArray(items)) {
    throw new LeadImportError("invalid-json", "JSON import must be an array of lead objects");
  }
  checkRowCount(items.length, options.maxRows ?? DEFAULT_MAX_ROWS);
  const ignored = new Set<string>();
  const normalized = items.map((item) => {
    if (typeof item !== "object" || item === null || Array.isArray(item)) return item;
    const lead: LeadInput = {};
    for (const [k, v] of Object.entries(item)) {
      const key = columnKey(k);
      if (KNOWN.has(key)) lead[key] = v;
      else ignored.add(key);
    }
    return lead;
  });
  const { records, rejected } = await toLeadRecords(normalized, options);
  return { records, rejected, ignoredColumns: [...ignored] };
}
