/**
 * Logging training runs to an MLflow tracking server through its REST API
 * (docs/lead-scoring.md §MLflow): experiments/get-by-name (or
 * experiments/create), runs/create, runs/log-batch (params, metrics, tags),
 * runs/update.
 *
 * Outbound-call care: the server is the operator's `MLFLOW_TRACKING_URI`
 * (http/https only, never taken from a request); redirects are refused (a
 * redirect could carry the bearer token to another host); every call has a
 * timeout and a response-size cap; errors name the endpoint and status,
 * never the token or the response body beyond 200 characters.
 *
 * @module
 */
import { readCapped } from "../read_capped.ts";

/** Options of {@linkcode createMlflowClient}. */
export interface MlflowOptions {
  trackingUri: string;
  token: string | null;
  experimentName: string;
  /** Per request. @default 10_000 */
  timeoutMs?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
}

/** One run to log. */
export interface MlflowRun {
  runName: string;
  startTime: number;
  endTime: number;
  status: "FINISHED" | "FAILED";
  params: Record<string, string | number | boolean>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

/** An MLflow call failed. */
export class MlflowError extends Error {
  override name = "MlflowError";
}

const MAX_RESPONSE_BYTES = 1_000_000;
// Documented per-request limits of runs/log-batch.
const MAX_PARAMS = 100;
const MAX_TAGS = 100;
const MAX_METRICS = 1000;

/** The client: one method, logging a whole run; resolves to its run id. */
export interface MlflowClient {
  logRun(run: MlflowRun): Promise<string>;
}

/** Builds a client for one tracking server. */
export function createMlflowClient(options: MlflowOptions): MlflowClient {
  const base = new URL(options.trackingUri);
  if (base.protocol !== "http:" && base.protocol !== "https:") {
    throw new MlflowError("MLflow tracking URI must be http or https");
  }
  if (base.username || base.password) {
    throw new MlflowError("MLflow tracking URI must not carry credentials");
  }
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const prefix = base.pathname.replace(/\/+$/, "");

  async function call(
    method: "GET" | "POST",
    endpoint: string,
    body?: unknown,
    query?: Record<string, string>,
  ) {
    const url = new URL(base.origin);
    url.pathname = `${prefix}/api/2.0/mlflow/${endpoint}`;
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let response: Response;
    try {
      response = await doFetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      throw new MlflowError(`MLflow ${endpoint}: request failed`, { cause: err });
    }
    const text = await readReply(response);
    if (response.status >= 300 && response.status < 400) {
      throw new MlflowError(`MLflow ${endpoint}: redirect refused (HTTP ${response.status})`);
    }
    let json: Record<string, unknown> = {};
    try {
      json = text === "" ? {} : JSON.parse(text);
    } catch {
      throw new MlflowError(`MLflow ${endpoint}: HTTP ${response.status}, not JSON`);
    }
    return { status: response.status, json };
  }

  async function experimentId(): Promise<string> {
    const found = await call("GET", "experiments/get-by-name", undefined, {
      experiment_name: options.experimentName,
    });
    const experiment = found.json.experiment as { experiment_id?: string } | undefined;
    if (found.status === 200 && experiment?.experiment_id) return experiment.experiment_id;
    if (found.json.error_code !== "RESOURCE_DOES_NOT_EXIST") {
      throw failure("experiments/get-by-name", found);
    }
    const created = await call("POST", "experiments/create", { name: options.experimentName });
    if (created.status === 200 && typeof created.json.experiment_id === "string") {
      return created.json.experiment_id;
    }
    throw failure("experiments/create", created);
  }

  return {
    async logRun(run) {
      const experiment = await experimentId();
      const tags = (record: Record<string, string>) =>
        Object.entries(record).map(([key, value]) => ({ key, value: value.slice(0, 5000) }));
      const created = await call("POST", "runs/create", {
        experiment_id: experiment,
        run_name: run.runName,
        start_time: run.startTime,
        tags: tags(run.tags).slice(0, 20),
      });
      const runId = (created.json.run as { info?: { run_id?: string } } | undefined)?.info?.run_id;
      if (created.status !== 200 || !runId) throw failure("runs/create", created);
      const params = Object.entries(run.params).map(([key, value]) => ({
        key,
        value: String(value),
      }));
      const metrics = Object.entries(run.metrics).filter(([, v]) => Number.isFinite(v))
        .map(([key, value]) => ({ key, value, timestamp: run.endTime, step: 0 }));
      const batch = await call("POST", "runs/log-batch", {
        run_id: runId,
        params: params.slice(0, MAX_PARAMS),
        metrics: metrics.slice(0, MAX_METRICS),
        tags: tags(run.tags).slice(0, MAX_TAGS),
      });
      if (batch.status !== 200) throw failure("runs/log-batch", batch);
      const updated = await call("POST", "runs/update", {
        run_id: runId,
        status: run.status,
        end_time: run.endTime,
      });
      if (updated.status !== 200) throw failure("runs/update", updated);
      return runId;
    },
  };
}

function failure(
  endpoint: string,
  reply: { status: number; json: Record<string, unknown> },
): MlflowError {
  const code = typeof reply.json.error_code === "string" ? ` ${reply.json.error_code}` : "";
  const message = typeof reply.json.message === "string"
    ? `: ${reply.json.message.slice(0, 200)}`
    : "";
  return new MlflowError(`MLflow ${endpoint}: HTTP ${reply.status}${code}${message}`);
}

async function readReply(response: Response): Promise<string> {
  const bytes = await readCapped(response.body, MAX_RESPONSE_BYTES);
  if (bytes === null) throw new MlflowError("MLflow response larger than 1 MB");
  return new TextDecoder().decode(bytes);
}
