import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { renderMetrics } from "../../shared/metrics/metrics.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

/** The label sets of one metric's series in an exposition. */
function series(text: string, name: string): string[] {
  return text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

Deno.test({
  name: "request metrics label routes by template: random paths and ids add no series",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack);
    const random = () => crypto.randomUUID();
    const hammer = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await h.call("GET", `/v1/leads/${random()}`);
        await h.call("GET", `/v1/tasks/${random()}`);
        await h.call("GET", `/v1/${random()}/${random()}`, { auth: null });
        await h.call("GET", `/${random()}?q=${random()}`, { auth: null });
        await h.call(["PROPFIND", "BREW", "GET"][i % 3]!, `/v1/me`);
        await h.call("GET", "/health");
      }
    };
    await hammer(5);
    const first = await renderMetrics(h.deps.metrics);
    await hammer(40);
    const text = await renderMetrics(h.deps.metrics);

    const requests = series(text, "api_requests_total");
    assert.equal(requests.length, series(first, "api_requests_total").length, "series grew");
    assert.equal(
      series(text, "api_request_duration_seconds_bucket").length,
      series(first, "api_request_duration_seconds_bucket").length,
    );
    assert.ok(!/[0-9a-f]{8}-[0-9a-f]{4}-/.test(text), "an id leaked into a label");
    const has = (labels: string) =>
      assert.ok(requests.some((l) => l.includes(labels)), `no series with ${labels}:\n${requests}`);
    has('method="GET",route="/v1/leads/:id",status="404"');
    has('method="GET",route="/v1/tasks/:id",status="404"');
    has('method="GET",route="/v1/*",status="401"');
    has('method="GET",route="/health",status="200"');
    has('method="GET",route="/v1/me",status="200"');
    // Unknown verbs collapse to "other"; nothing routes them, so the catch-all names them.
    has('method="other",route="/v1/*"');
    // The 45 /health calls are counted, and timed in the same series.
    assert.match(text, /api_requests_total\{method="GET",route="\/health",status="200"\} 45\n/);
    assert.match(
      text,
      /api_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 45\n/,
    );
    assert.match(text, /api_request_duration_seconds_bucket\{le="0\.2",method="GET"/);
  },
});

Deno.test({
  name: "METRICS_ENABLED=false leaves the request metrics empty",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack, { env: { METRICS_ENABLED: "false" } });
    assert.equal((await h.call("GET", "/health")).status, 200);
    assert.equal(series(await renderMetrics(h.deps.metrics), "api_requests_total").length, 0);
  },
});

Deno.test({
  name: "idempotency outcomes are counted: first run, replay, key reused with another body",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    await using h = await routeHarness(stack);
    const key = crypto.randomUUID();
    const post = (echo: string) =>
      h.call("POST", "/v1/tasks", {
        json: { type: "noop", payload: { echo } },
        headers: { "idempotency-key": key },
      });
    assert.equal((await post("a")).status, 202);
    const again = await post("a");
    assert.equal(again.headers.get("idempotency-replayed"), "true");
    assert.equal((await post("b")).status, 422);
    const text = await renderMetrics(h.deps.metrics);
    for (const outcome of ["claimed", "completed", "mismatch"]) {
      assert.match(text, new RegExp(`idempotency_outcomes_total\\{outcome="${outcome}"\\} 1\\n`));
    }
  },
});
