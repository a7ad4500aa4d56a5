import assert from "node:assert/strict";
import { z } from "zod";
import { createMlflowClient, MlflowError } from "./mlflow.ts";

const KeyValue = z.object({ key: z.string().max(250), value: z.string().max(6000) }).strict();
// Request bodies as the MLflow REST API documents them (api/2.0/mlflow/...).
const SHAPES: Record<string, z.ZodType> = {
  "experiments/create": z.object({ name: z.string().min(1) }).strict(),
  "runs/create": z.object({
    experiment_id: z.string(),
    run_name: z.string(),
    start_time: z.number().int(),
    tags: z.array(KeyValue).max(20),
  }).strict(),
  "runs/log-batch": z.object({
    run_id: z.string(),
    params: z.array(KeyValue).max(100),
    metrics: z.array(
      z.object({
        key: z.string(),
        value: z.number(),
        timestamp: z.number().int(),
        step: z.number().int(),
      }).strict(),
    ).max(1000),
    tags: z.array(KeyValue).max(100),
  }).strict(),
  "runs/update": z.object({
    run_id: z.string(),
    status: z.enum(["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]),
    end_time: z.number().int(),
  }).strict(),
};

/** A loopback MLflow double: validates each documented request shape, answers as MLflow does. */
function startMlflowDouble(options: { redirect?: boolean } = {}) {
  const calls: { endpoint: string; body: unknown; auth: string | null }[] = [];
  const experiments = new Map<string, string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const url = new URL(req.url);
    const endpoint = url.pathname.replace(/^\/base\/api\/2\.0\/mlflow\//, "");
    const auth = req.headers.get("authorization");
    if (options.redirect) return Response.redirect("http://127.0.0.1:1/steal", 302);
    if (req.method === "GET" && endpoint === "experiments/get-by-name") {
      calls.push({ endpoint, body: url.searchParams.get("experiment_name"), auth });
      const id = experiments.get(url.searchParams.get("experiment_name") ?? "");
      return id
        ? Response.json({ experiment: { experiment_id: id, name: "x" } })
        : Response.json({ error_code: "RESOURCE_DOES_NOT_EXIST", message: "no such experiment" }, {
          status: 404,
        });
    }
    const shape = SHAPES[endpoint];
    if (req.method !== "POST" || !shape || req.headers.get("content-type") !== "application/json") {
      return Response.json({ error_code: "ENDPOINT_NOT_FOUND" }, { status: 404 });
    }
    const body = await req.json();
    calls.push({ endpoint, body, auth });
    const parsed = shape.safeParse(body);
    if (!parsed.success) {
      return Response.json(
        { error_code: "INVALID_PARAMETER_VALUE", message: parsed.error.message },
        { status: 400 },
      );
    }
    if (endpoint === "experiments/create") {
      experiments.set(body.name, "7");
      return Response.json({ experiment_id: "7" });
    }
    if (endpoint === "runs/create") {
      return Response.json({ run: { info: { run_id: "run-1", experiment_id: "7" } } });
    }
    return Response.json({});
  });
  return { calls, server, uri: `http://127.0.0.1:${server.addr.port}/base` };
}

const RUN = {
  runName: "lead-scoring v3",
  startTime: 1_700_000_000_000,
  endTime: 1_700_000_005_000,
  status: "FINISHED" as const,
  params: { n_trees: 100, max_depth: 10, seed: 42 },
  metrics: { roc_auc: 0.81, log_loss: 0.39, nan_is_dropped: Number.NaN },
  tags: { "pleasant_cove.version": "3", "pleasant_cove.status": "champion" },
};

Deno.test("MLflow client: creates the experiment, then runs/create, runs/log-batch, runs/update in the documented shapes", async () => {
  const double = startMlflowDouble();
  try {
    const client = createMlflowClient({
      trackingUri: double.uri,
      token: "t0ken",
      experimentName: "leads",
    });
    assert.equal(await client.logRun(RUN), "run-1");
    assert.deepEqual(double.calls.map((c) => c.endpoint), [
      "experiments/get-by-name",
      "experiments/create",
      "runs/create",
      "runs/log-batch",
      "runs/update",
    ]);
    assert.ok(double.calls.every((c) => c.auth === "Bearer t0ken"));
    const batch = double.calls[3]!.body as { params: unknown[]; metrics: { key: string }[] };
    assert.deepEqual(batch.params, [
      { key: "n_trees", value: "100" },
      { key: "max_depth", value: "10" },
      { key: "seed", value: "42" },
    ]);
    assert.deepEqual(batch.metrics.map((m) => m.key), ["roc_auc", "log_loss"]);
    // The second run finds the experiment by name.
    await client.logRun(RUN);
    assert.equal(double.calls.filter((c) => c.endpoint === "experiments/create").length, 1);
  } finally {
    await double.server.shutdown();
  }
});

Deno.test("MLflow client: refuses redirects (the token never follows one) and reports errors without the token", async () => {
  const double = startMlflowDouble({ redirect: true });
  try {
    const client = createMlflowClient({
      trackingUri: double.uri,
      token: "s3cret-token",
      experimentName: "leads",
    });
    await assert.rejects(client.logRun(RUN), (err: unknown) => {
      assert.ok(err instanceof MlflowError);
      assert.match(err.message, /redirect refused/);
      assert.ok(!err.message.includes("s3cret"));
      return true;
    });
  } finally {
    await double.server.shutdown();
  }
  assert.throws(
    () =>
      createMlflowClient({ trackingUri: "file:///etc/passwd", token: null, experimentName: "x" }),
    MlflowError,
  );
  assert.throws(
    () =>
      createMlflowClient({
        trackingUri: "http://user:pw@127.0.0.1/",
        token: null,
        experimentName: "x",
      }),
    MlflowError,
  );
});
