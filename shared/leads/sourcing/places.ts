/**
 * A client for Google Places API (New) Text Search
 * (`POST /v1/places:searchText`) that turns search results into lead inputs
 * for `toLeadRecord()` (record.ts). It follows `nextPageToken` up to `maxPages`,
 * keeps to a client-side request rate (`qps`), waits out 429s (Retry-After,
 * bounded) a few times, and classifies failures: refused requests (bad key,
 * INVALID_ARGUMENT) are {@linkcode PlacesRequestError} (permanent: the queue
 * dead-letters them), everything retriable is {@linkcode PlacesUnavailableError}.
 *
 * @example
 * ```ts
 * const places = createPlacesClient({
 *   apiKey: config.placesApiKey,
 *   fetch: (input, init) => breakers.get("places").fetch(input, init),
 * });
 * const { leads } = await places.searchText("plumbers in Duluth, MN", { signal: ctx.signal });
 * const { records, rejected } = await toLeadRecords(leads, { defaultRegion: "US" });
 * ```
 *
 * @see https://developers.google.com/maps/documentation/places/web-service/text-search
 * @module
 */
import { parseRetryAfter } from "../../breakers/classify.ts";
import { PlacesRequestError, PlacesUnavailableError, type ProviderError } from "./errors.ts";
import type { LeadInput } from "./record.ts";
import { PLACES_FIELD_MASK, placeToLeadInput } from "./place_lead.ts";

/** `fetch` or anything shaped like it (a circuit breaker's `fetch`). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Sleeps `ms`, rejecting with the signal's reason when it aborts. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** Options of {@linkcode createPlacesClient}. */
export interface PlacesClientOptions {
  /** Sent as `X-Goog-Api-Key`. */
  apiKey: string;
  /** @default "https://places.googleapis.com" */
  baseUrl?: string;
  /** @default the global fetch */
  fetch?: FetchLike;
  /**
   * Requests per second this client sends at most (all its searches
   * together). The project's quota is shared by every process: give each its
   * share. @default 5
   */
  qps?: number;
  /** 429 answers retried before giving up with PlacesUnavailableError. @default 2 */
  maxThrottleRetries?: number;
  /** Longest 429 wait honoured; asked to wait longer, the client gives up at once. @default 30_000 */
  maxRetryAfterMs?: number;
  /** Wait after a 429 without Retry-After, doubled on each retry. @default 1_000 */
  throttleBackoffMs?: number;
  /** Time for one request, body included. @default 10_000 */
  timeoutMs?: number;
  /** @default Date.now */
  now?: () => number;
  /** @default a setTimeout sleep */
  sleep?: Sleep;
}

/** Options of {@linkcode PlacesClient.searchText}. */
export interface PlacesSearchOptions {
  /** Pages fetched at most; Google stops after 60 results (3 pages of 20). @default 3 */
  maxPages?: number;
  /** Results per page, 1..20. @default 20 */
  pageSize?: number;
  /** Language of names and type labels, e.g. "en". @default the provider's choice */
  languageCode?: string;
  /** CLDR region code biasing results and formatting, e.g. "us". @default none */
  regionCode?: string;
  signal?: AbortSignal;
}

/** What a search produced. */
export interface PlacesSearchResult {
  /** One lead input per place, in result order, for `toLeadRecord()` (record.ts). */
  leads: LeadInput[];
  /** Pages fetched. */
  pages: number;
  /** The token of the page after the last fetched; null when the results are exhausted. */
  nextPageToken: string | null;
}

/** A Text Search client; see {@linkcode createPlacesClient}. */
export interface PlacesClient {
  /** Runs a text search, following `nextPageToken` up to `maxPages`. */
  searchText(textQuery: string, options?: PlacesSearchOptions): Promise<PlacesSearchResult>;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function errorName(err: unknown): unknown {
  return typeof err === "object" && err !== null ? (err as { name?: unknown }).name : undefined;
}

/** A buffered answer: the body is read under the request's timeout. */
interface Answer {
  status: number;
  retryAfter: string | null;
  text: string;
}

/** Google's `{"error":{"code","message","status"}}`, or the start of whatever came instead. */
function providerError(answer: Answer): ProviderError {
  try {
    const body = JSON.parse(answer.text) as { error?: { message?: unknown; status?: unknown } };
    if (typeof body.error?.message === "string") {
      return {
        httpStatus: answer.status,
        status: typeof body.error.status === "string" ? body.error.status : null,
        message: body.error.message.slice(0, 1000),
      };
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  return {
    httpStatus: answer.status,
    status: null,
    message: answer.text.trim().slice(0, 200) || "no message",
  };
}

function positive(what: string, name: string, value: number, integer = false): number {
  if (!(Number.isFinite(value) && value > 0) || (integer && !Number.isInteger(value))) {
    throw new RangeError(
      `${what}: ${name} must be a positive ${integer ? "integer" : "number"}, got ${value}`,
    );
  }
  return value;
}

const CREATE = "Cannot create a Places client";

/** Builds a Places Text Search client; options are checked here, once. */
export function createPlacesClient(options: PlacesClientOptions): PlacesClient {
  if (typeof options.apiKey !== "string" || options.apiKey.trim() === "") {
    throw new TypeError("Cannot create a Places client: apiKey is required");
  }
  const base = options.baseUrl ?? "https://places.googleapis.com";
  if (!URL.canParse(base)) {
    throw new TypeError(`Cannot create a Places client: baseUrl is not a URL: ${base}`);
  }
  const url = new URL("v1/places:searchText", base.endsWith("/") ? base : `${base}/`).href;
  const doFetch = options.fetch ?? fetch;
  const intervalMs = 1000 / positive(CREATE, "qps", options.qps ?? 5);
  const maxThrottleRetries = options.maxThrottleRetries ?? 2;
  if (!Number.isInteger(maxThrottleRetries) || maxThrottleRetries < 0) {
    throw new RangeError(
      `${CREATE}: maxThrottleRetries must be an integer of at least 0, got ${maxThrottleRetries}`,
    );
  }
  const maxRetryAfterMs = positive(CREATE, "maxRetryAfterMs", options.maxRetryAfterMs ?? 30_000);
  const throttleBackoffMs = positive(
    CREATE,
    "throttleBackoffMs",
    options.throttleBackoffMs ?? 1_000,
  );
  const timeoutMs = positive(CREATE, "timeoutMs", options.timeoutMs ?? 10_000);
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? defaultSleep;
  const headers = {
    "Content-Type": "application/json",
    "X-Goog-Api-Key": options.apiKey,
    "X-Goog-FieldMask": PLACES_FIELD_MASK,
  };

  // The earliest time the next request may start. Slots are reserved before
  // awaiting, so concurrent searches of this client share the rate too.
  let nextSlot = 0;
  async function pace(signal: AbortSignal | undefined): Promise<void> {
    const t = now();
    const at = Math.max(t, nextSlot);
    nextSlot = at + intervalMs;
    if (at > t) await sleep(at - t, signal);
  }

  /** One POST with its own timeout, which covers reading the body too. */
  async function send(body: string, signal: AbortSignal | undefined): Promise<Answer> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new DOMException("Places request timed out", "TimeoutError")),
      timeoutMs,
    );
    const combined = signal ? AbortSignal.any([signal, controller.signal]) : controller.signal;
    try {
      const res = await doFetch(url, { method: "POST", headers, body, signal: combined });
      return {
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        text: await res.text(),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async function post(request: Record<string, unknown>, signal?: AbortSignal): Promise<unknown> {
    const body = JSON.stringify(request);
    for (let throttled = 0;; throttled++) {
      await pace(signal);
      let answer: Answer;
      let retryAfterMs: number | null = null;
      try {
        answer = await send(body, signal);
        if (answer.status === 429) retryAfterMs = parseRetryAfter(answer.retryAfter, now());
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        const name = errorName(err);
        // A breaker refusing says nothing new about Places; keep it as it is.
        if (name === "BreakerOpenError") throw err;
        if (name !== "BreakerThrottledError") {
          const what = name === "TimeoutError" ? `timed out after ${timeoutMs}ms` : "failed";
          throw new PlacesUnavailableError(`Places API request ${what}`, { cause: err });
        }
        // A breaker's fetch turns a 429 with Retry-After into this error.
        const wait = (err as { retryAfterMs?: unknown }).retryAfterMs;
        retryAfterMs = typeof wait === "number" ? wait : null;
        await (err as { response?: Response | null }).response?.body?.cancel();
        answer = { status: 429, retryAfter: null, text: "" };
      }
      if (answer.status === 429) {
        const wait = retryAfterMs ?? throttleBackoffMs * 2 ** throttled;
        if (throttled >= maxThrottleRetries || wait > maxRetryAfterMs) {
          throw new PlacesUnavailableError(
            `Places API is throttling: 429 after ${
              throttled + 1
            } attempts, asked to wait ${wait}ms`,
            { details: { status: 429, retry_after_ms: wait } },
          );
        }
        // Every search of this client waits, not just this one: the quota is shared.
        nextSlot = Math.max(nextSlot, now() + wait);
        continue;
      }
      if (answer.status < 200 || answer.status > 299) {
        const problem = providerError(answer);
        if (answer.status >= 500 || answer.status === 408) {
          throw new PlacesUnavailableError(
            `Places API failed with ${answer.status}: ${problem.message}`,
            { details: { status: answer.status, provider_status: problem.status } },
          );
        }
        throw new PlacesRequestError(problem);
      }
      try {
        return JSON.parse(answer.text);
      } catch (err) {
        throw new PlacesUnavailableError("Places API answered 200 with a body that is not JSON", {
          cause: err,
        });
      }
    }
  }

  return {
    async searchText(textQuery, search = {}) {
      if (textQuery.trim() === "") throw new TypeError("Cannot search Places: textQuery is empty");
      const maxPages = positive("Cannot search Places", "maxPages", search.maxPages ?? 3, true);
      const pageSize = search.pageSize ?? 20;
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 20) {
        throw new RangeError(`Cannot search Places: pageSize must be 1..20, got ${pageSize}`);
      }
      const leads: LeadInput[] = [];
      let pageToken: string | null = null;
      let pages = 0;
      do {
        // A page token is only valid with the same request parameters.
        const body: unknown = await post({
          textQuery,
          pageSize,
          ...(search.languageCode ? { languageCode: search.languageCode } : {}),
          ...(search.regionCode ? { regionCode: search.regionCode } : {}),
          ...(pageToken ? { pageToken } : {}),
        }, search.signal);
        pages++;
        const page = (typeof body === "object" && body !== null ? body : {}) as {
          places?: unknown;
          nextPageToken?: unknown;
        };
        if (page.places !== undefined && !Array.isArray(page.places)) {
          throw new PlacesUnavailableError("Places API answered 200 without a places array");
        }
        for (const place of page.places ?? []) {
          leads.push(placeToLeadInput(typeof place === "object" && place !== null ? place : {}));
        }
        pageToken = typeof page.nextPageToken === "string" && page.nextPageToken !== ""
          ? page.nextPageToken
          : null;
      } while (pageToken !== null && pages < maxPages);
      return { leads, pages, nextPageToken: pageToken };
    },
  };
}
