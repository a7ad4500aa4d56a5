/**
 * The SLO status of the console's overview (`GET /v1/slo`): the recording
 * rules of deploy/prometheus/rules.yml read from the configured Prometheus
 * (`PROMETHEUS_URL`) in one instant query, each compared with the objective
 * its alert uses.
 *
 * - Not configured, refused, unreachable, a bad answer: `status: "unknown"`
 *   with a `reason`, never an error; the console shows it as such.
 * - Outbound like the alert webhook: the host is resolved and every address
 *   checked first (shared/alerts/target.ts). Prometheus normally lives on the
 *   cluster network, so private addresses are allowed; link-local (cloud
 *   metadata), multicast and reserved ones never. No redirects are followed,
 *   the whole read has one time budget, the answer is read up to 1 MiB, and
 *   neither the answer nor the log ever names the URL.
 * - Answers (good or unknown) are kept for `cacheMs` per edge instance and
 *   concurrent reads share one call: an unreachable Prometheus costs at most
 *   one timed-out call per 10 s per edge, which is why no circuit breaker
 *   guards it (a breaker would only shorten what the cache already bounds).
 *
 * @module
 */
import { readCapped } from "../../shared/read_capped.ts";
import type { Logger } from "../../shared/log.ts";
import {
  AlertTargetRefusedError,
  checkAlertTarget,
  type Resolver,
} from "../../shared/alerts/target.ts";

/** One objective: a recording rule and the bound its alert uses (rules.yml). */
export interface Objective {
  name: "error_rate" | "p95_latency" | "booking_success_rate";
  title: string;
  /** The recording rule read from Prometheus. */
  record: string;
  unit: "ratio" | "seconds";
  /** `below`: good while value ≤ threshold; `above`: good while value ≥ threshold. */
  comparison: "below" | "above";
  threshold: number;
}

/** The objectives, with the thresholds of HighErrorRate, HighRequestLatency, LowBookingSuccessRate. */
export const OBJECTIVES: readonly Objective[] = [
  {
    name: "error_rate",
    title: "Edge 5xx ratio (5 min)",
    record: "api:request_errors:ratio_rate5m",
    unit: "ratio",
    comparison: "below",
    threshold: 0.01,
  },
  {
    name: "p95_latency",
    title: "Edge p95 latency (5 min)",
    record: "api:request_duration_seconds:p95_5m",
    unit: "seconds",
    comparison: "below",
    threshold: 0.2,
  },
  {
    name: "booking_success_rate",
    title: "Booking success (15 min)",
    record: "appointment_bookings:success_ratio_rate15m",
    unit: "ratio",
    comparison: "above",
    threshold: 0.99,
  },
];

/** Why the status is unknown. */
export type UnknownReason =
  | "not-configured"
  | "target-refused"
  | "unreachable"
  | "bad-response"
  | "no-data";

/** One objective's reading. */
export interface ObjectiveReading extends Objective {
  /** Null when Prometheus has no finite value (no traffic, no bookings) or was not read. */
  value: number | null;
  status: "ok" | "breach" | "no_data" | "unknown";
}

/** The answer of `GET /v1/slo`. */
export interface SloReport {
  status: "ok" | "breach" | "unknown";
  reason: UnknownReason | null;
  detail: string | null;
  /** When Prometheus was asked (ISO 8601); answers are cached briefly. */
  checked_at: string;
  objectives: ObjectiveReading[];
}

/** Options of {@linkcode createSloSource}. */
export interface SloSourceOptions {
  /** Prometheus base URL; null: not configured. */
  url: string | null;
  timeoutMs: number;
  now: () => number;
  log?: Logger;
  /** How long an answer is reused. @default 10_000 */
  cacheMs?: number;
  /** Largest Prometheus answer read. @default 1_048_576 */
  maxResponseBytes?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default Deno.resolveDns through shared/alerts/target.ts */
  resolve?: Resolver;
}

/** Reads the SLO status; see the module doc. */
export interface SloSource {
  read(): Promise<SloReport>;
}

/** The instant query: every objective's series in one call. */
export const SLO_QUERY = `{__name__=~"${OBJECTIVES.map((o) => o.record).join("|")}"}`;

class SloUnknown extends Error {
  override name = "SloUnknown";
  constructor(readonly reason: UnknownReason, message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

function judge(o: Objective, value: number | null): ObjectiveReading["status"] {
  if (value === null) return "no_data";
  const good = o.comparison === "below" ? value <= o.threshold : value >= o.threshold;
  return good ? "ok" : "breach";
}

/** The report for per-record values (the worst series of each record counts). */
export function evaluate(values: Map<string, number[]>, checkedAt: Date): SloReport {
  const objectives = OBJECTIVES.map((o) => {
    const finite = (values.get(o.record) ?? []).filter(Number.isFinite);
    const value = finite.length === 0
      ? null
      : o.comparison === "below"
      ? Math.max(...finite)
      : Math.min(...finite);
    return { ...o, value, status: judge(o, value) };
  });
  const breached = objectives.some((o) => o.status === "breach");
  const measured = objectives.some((o) => o.status === "ok");
  return {
    status: breached ? "breach" : measured ? "ok" : "unknown",
    reason: breached || measured ? null : "no-data",
    detail: breached || measured ? null : "Prometheus has no value for any objective yet",
    checked_at: checkedAt.toISOString(),
    objectives,
  };
}

/** The report when nothing could be read. */
export function unknownReport(reason: UnknownReason, detail: string, checkedAt: Date): SloReport {
  return {
    status: "unknown",
    reason,
    detail,
    checked_at: checkedAt.toISOString(),
    objectives: OBJECTIVES.map((o) => ({ ...o, value: null, status: "unknown" as const })),
  };
}

/** Parses an instant-query answer into values per record name. */
export function parseQueryAnswer(body: unknown): Map<string, number[]> {
  const answer = body as {
    status?: unknown;
    data?: { resultType?: unknown; result?: unknown };
  } | null;
  if (answer?.status !== "success" || answer.data?.resultType !== "vector") {
    throw new SloUnknown("bad-response", "Prometheus did not answer with a vector");
  }
  if (!Array.isArray(answer.data.result)) {
    throw new SloUnknown("bad-response", "Prometheus answered without a result list");
  }
  const values = new Map<string, number[]>();
  for (
    const sample of answer.data.result as { metric?: { __name__?: unknown }; value?: unknown }[]
  ) {
    const name = sample?.metric?.__name__;
    const value = Array.isArray(sample?.value) ? Number(sample.value[1]) : NaN;
    if (typeof name !== "string") continue;
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return values;
}

/** Builds the source; nothing is called until the first `read()`. */
export function createSloSource(options: SloSourceOptions): SloSource {
  if (!Number.isFinite(options?.timeoutMs) || options.timeoutMs <= 0) {
    throw new TypeError("createSloSource() requires a positive timeoutMs");
  }
  const cacheMs = options.cacheMs ?? 10_000;
  const maxBytes = options.maxResponseBytes ?? 1_048_576;
  let cached: { at: number; report: Promise<SloReport> } | null = null;

  async function ask(base: string, checkedAt: Date): Promise<SloReport> {
    const signal = AbortSignal.timeout(options.timeoutMs);
    const url = new URL(`${base}/api/v1/query`);
    url.searchParams.set("query", SLO_QUERY);
    try {
      await checkAlertTarget(url, {
        allowPrivate: true,
        subject: "PROMETHEUS_URL",
        signal,
        ...(options.resolve ? { resolve: options.resolve } : {}),
      });
    } catch (err) {
      if (err instanceof AlertTargetRefusedError) {
        throw new SloUnknown("target-refused", err.message, { cause: err });
      }
      throw new SloUnknown("unreachable", "PROMETHEUS_URL's host could not be checked", {
        cause: err,
      });
    }
    let res: Response;
    try {
      res = await (options.fetch ?? fetch)(url, {
        headers: { Accept: "application/json" },
        redirect: "manual",
        signal,
      });
    } catch (err) {
      const why = signal.aborted ? `no answer within ${options.timeoutMs} ms` : "connection failed";
      throw new SloUnknown("unreachable", `Prometheus is unreachable: ${why}`, { cause: err });
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new SloUnknown("bad-response", `Prometheus answered HTTP ${res.status}`);
    }
    let bytes: Uint8Array | null;
    try {
      bytes = await readCapped(res.body, maxBytes);
    } catch (err) {
      throw new SloUnknown("unreachable", "Prometheus's answer was cut off", { cause: err });
    }
    if (bytes === null) {
      throw new SloUnknown("bad-response", `Prometheus's answer is over ${maxBytes} bytes`);
    }
    let body: unknown;
    try {
      body = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new SloUnknown("bad-response", "Prometheus's answer is not JSON", { cause: err });
    }
    return evaluate(parseQueryAnswer(body), checkedAt);
  }

  async function fresh(): Promise<SloReport> {
    const checkedAt = new Date(options.now());
    if (options.url === null) {
      return unknownReport("not-configured", "PROMETHEUS_URL is not set", checkedAt);
    }
    try {
      return await ask(options.url, checkedAt);
    } catch (err) {
      if (!(err instanceof SloUnknown)) throw err;
      // The reason only: the URL (and what the resolver or client said about it) stays out.
      options.log?.warn("slo status unknown", { reason: err.reason, detail: err.message });
      return unknownReport(err.reason, err.message, checkedAt);
    }
  }

  return {
    read() {
      const now = options.now();
      if (cached === null || now - cached.at >= cacheMs || now < cached.at) {
        cached = { at: now, report: fresh() };
      }
      return cached.report;
    },
  };
}
