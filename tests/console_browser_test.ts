/**
 * The operator console in a real browser (playwright-core driving Debian's
 * Chromium, headless) against real edge and worker processes: sign in with
 * the development sign-in, see the overview, watch a task enqueued over the
 * API appear and complete live, replay a dead-lettered task from the DLQ
 * view, force a breaker open and reset it, see the SLO panel, lose the edge (banner) and catch
 * up on what happened meanwhile once it is back (resubscribe with `since`), and check that a viewer's buttons
 * are disabled AND that the API refuses the viewer's action anyway.
 *
 * Screenshots of the overview and DLQ views go to `.tmp/screenshots/`
 * (git-ignored); docs/images/ holds a copy chosen by hand.
 *
 * The worker always uses the "pc" queue namespace, so the edge and the worker
 * get a redis-server of their own (the shared stack's queue belongs to other
 * suites). Waits are on conditions, with generous timeouts for a loaded
 * machine.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import axeSource from "axe-core/axe.min.js" with { type: "text" };
import { useTestStack } from "../testing/stack.ts";
import { parseConfig } from "../shared/config/mod.ts";
import { createRedis } from "../shared/deps.ts";
import { queueFromConfig } from "../shared/queue/from_config.ts";
import { claim, fail } from "../shared/queue/leases.ts";
import { token } from "../testing/live_feed.ts";
import { waitUntil } from "../testing/wait.ts";
import { AppProcess, privateRedis, startEdge } from "../testing/process.ts";
import { noSanitizers } from "../testing/sanitizers.ts";

const CHROMIUM = "/usr/bin/chromium";
const SHOTS = new URL("../.tmp/screenshots/", import.meta.url).pathname;
/** Per browser wait: generous, a loaded 2-core machine runs many suites at once. */
const WAIT_MS = 30_000;

async function launch(): Promise<Browser> {
  try {
    await Deno.stat(CHROMIUM);
  } catch {
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (.ci/run does)`);
  }
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox cannot start as root (CI runs as root).
    args: Deno.uid() === 0 ? ["--no-sandbox"] : [],
    timeout: WAIT_MS,
  });
}

/** Opens the console in a fresh context (its own session storage) and signs in as `role`. */
async function signIn(browser: Browser, url: string, role: string): Promise<Page> {
  const context = await browser.newContext({
    viewport: { width: 1440, height: 900 },
    colorScheme: "light",
  });
  context.setDefaultTimeout(WAIT_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (err) => errors.push(String(err)));
  // CSP violations and script errors show here. Refused API calls (a 404 for
  // a route this edge lacks, a viewer's 403) are answers the page handles.
  page.on("console", (m) => {
    // (The edge restart below also makes failed loads and socket attempts.)
    const expected = /^(Failed to load resource|WebSocket connection to .* failed)/;
    if (m.type() === "error" && !expected.test(m.text())) {
      errors.push(m.text());
    }
  });
  page.on("response", (r) => r.status() >= 500 && errors.push(`${r.status()} ${r.url()}`));
  (page as Page & { errors: string[] }).errors = errors;
  try {
    await page.goto(`${url}/console`);
    await page.getByTestId(`dev-${role}`).waitFor();
    assert.deepEqual(await accessibilityViolations(page), [], "sign-in page");
    await page.getByTestId(`dev-${role}`).click();
    await page.getByTestId("whoami").filter({ hasText: `dev-${role}` }).waitFor();
    // The live feed is subscribed before anything is expected to arrive on it.
    await page.locator(".dot.live").waitFor();
  } catch (err) {
    throw new Error(`signing in as ${role} failed; page errors: ${errors.join("\n")}`, {
      cause: err,
    });
  }
  return page;
}

/** Starts an edge on `port` again; retries while the old socket still holds the port. */
async function restartEdge(env: Record<string, string>, port: string): Promise<AppProcess> {
  for (let attempt = 1;; attempt++) {
    const edge = new AppProcess("edge/main.ts", { ...env, EDGE_PORT: port });
    try {
      await edge.waitForLog("edge listening", WAIT_MS);
      return edge;
    } catch (err) {
      const { stderr } = await edge.stop("SIGKILL");
      const inUse = /address already in use/i.test(stderr + edge.lines.join("\n"));
      if (!inUse || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/**
 * WCAG 2 A/AA violations axe-core finds on the page as shown (labels, names,
 * contrast, landmarks…), as `rule: selector` lines. Injected through the
 * DevTools protocol, which the page's CSP does not govern.
 */
async function accessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(axeSource);
  return await page.evaluate(async () => {
    type Axe = {
      run(
        options: unknown,
      ): Promise<{ violations: { id: string; nodes: { target: unknown }[] }[] }>;
    };
    const axe = (globalThis as unknown as { axe: Axe }).axe;
    // No context: the whole document.
    const result = await axe.run({
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    });
    return result.violations.flatMap((v) => v.nodes.map((n) => `${v.id}: ${String(n.target)}`));
  });
}

function pageErrors(page: Page): string[] {
  return (page as Page & { errors?: string[] }).errors ?? [];
}

Deno.test({
  name:
    "the console signs in, follows tasks live, replays a dead letter, operates breakers; a viewer cannot act",
  // Playwright's pipes to Chromium and the processes' streams close after the test body.
  ...noSanitizers,
}, async () => {
  await using stack = await useTestStack();
  const redis = await privateRedis();
  const env = { ...stack.env(), ...redis.env, APP_ENV: "test" };
  const config = parseConfig(env);
  const processes: AppProcess[] = [];
  let browser: Browser | undefined;
  try {
    const { edge, url } = await startEdge(env);
    processes.push(edge);
    const minerva = await token(config.auth, "sa:minerva");
    const admin = await token(config.auth, "ada", { roles: ["admin"] });
    const call = async (method: string, path: string, bearer: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${bearer}`,
          "Content-Type": "application/json",
          "Idempotency-Key": crypto.randomUUID(),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json() };
    };

    // Two dead letters, made before any worker runs: claimed and failed for good.
    const queue = queueFromConfig(createRedis(config.redis), config);
    const ids = await Promise.all(
      ["doomed", "unwanted"].map(async (echo) =>
        (await queue.enqueue("noop", { echo }, { maxAttempts: 1 })).id
      ),
    );
    const { tasks } = await claim(queue.ctx, { max: 2, leaseMs: 30_000, workerId: "console-test" });
    assert.equal(tasks.length, 2);
    await fail(
      queue.ctx,
      tasks.map((t) => ({
        id: t.id,
        leaseToken: t.leaseToken,
        error: "Error: upstream said no",
        permanent: true,
        backoffMs: 0,
      })),
    );
    for (const id of ids) assert.equal((await queue.getTask(id))?.status, "dead");

    const worker = new AppProcess("workers/main.ts", env);
    processes.push(worker);
    await worker.waitForLog("worker ready", WAIT_MS);

    browser = await launch();
    await Deno.mkdir(SHOTS, { recursive: true });
    const page = await signIn(browser, url, "admin");

    // Overview: the dead letter is counted, the breakers are listed.
    await page.getByTestId("stat-dead").filter({ hasText: "2" }).waitFor();
    await page.getByTestId("dead-by-type").locator("tr[data-key=noop]").waitFor();
    // Waited for, not read at once: the breaker list may still be loading ("—").
    await page.getByTestId("stat-breakers").filter({ hasText: /\d/ }).waitFor();
    // The SLO panel: this edge has no PROMETHEUS_URL, so the status is unknown and says why
    // (tests/prometheus_e2e_test.ts reads real values through the same route).
    await page.getByTestId("slo-status").filter({ hasText: "PROMETHEUS_URL is not set" }).waitFor();
    assert.match(await page.getByTestId("slo-status").innerText(), /unknown/i);
    const objectives = page.getByTestId("slo").locator("tbody tr");
    assert.deepEqual(
      (await objectives.allInnerTexts()).map((t) => t.split("\t").map((c) => c.trim())),
      [
        ["Edge 5xx ratio (5 min)", "—", "≤ 1 %", "Unknown"],
        ["Edge p95 latency (5 min)", "—", "≤ 200 ms", "Unknown"],
        ["Booking success (15 min)", "—", "≥ 99 %", "Unknown"],
      ],
    );

    // A task enqueued over the API appears and completes live.
    const enqueued = await call("POST", "/v1/tasks", minerva, {
      type: "noop",
      payload: { echo: "console" },
    });
    assert.equal(enqueued.status, 202, JSON.stringify(enqueued.body));
    const [deadId, purgedId] = ids as [string, string];
    const liveRow = page.getByTestId("live-tasks").locator(
      `tr[data-key="${enqueued.body.task_id}"]`,
    );
    await liveRow.filter({ hasText: "succeeded" }).waitFor();
    assert.match(await liveRow.innerText(), /noop/);
    await page.screenshot({ path: `${SHOTS}overview.png`, fullPage: true });
    assert.deepEqual(await accessibilityViolations(page), [], "overview, light");

    // DLQ: inspect, then replay from the view; the worker runs it.
    await page.getByRole("link", { name: "Dead letters" }).click();
    const deadRow = page.getByTestId("dlq").locator(`tr[data-key="${deadId}"]`);
    await deadRow.waitFor();
    await deadRow.getByRole("button", { name: "Inspect" }).click();
    await page.getByLabel("Dead task").filter({ hasText: "upstream said no" }).waitFor();
    await page.screenshot({ path: `${SHOTS}dlq.png`, fullPage: true });
    assert.deepEqual(await accessibilityViolations(page), [], "dead letters");
    await deadRow.getByTestId(`replay-${deadId}`).click();
    await page.getByTestId(`replay-${deadId}-confirm`).click();
    await deadRow.waitFor({ state: "detached" });
    await page.getByRole("status").filter({ hasText: "replayed" }).waitFor();
    await waitUntil(async () => (await queue.getTask(deadId))?.status === "succeeded", {
      timeoutMs: WAIT_MS,
      what: "the replayed task to succeed",
    });
    // Purge, after a confirmation: gone from the view and from the queue.
    const purgedRow = page.getByTestId("dlq").locator(`tr[data-key="${purgedId}"]`);
    await purgedRow.getByTestId(`purge-${purgedId}`).click();
    await page.getByTestId(`purge-${purgedId}-confirm`).click();
    await purgedRow.waitFor({ state: "detached" });
    assert.equal((await call("GET", `/v1/dlq/${purgedId}`, admin)).status, 404);
    assert.equal(await queue.getTask(purgedId), null);

    // Breakers: force one open, then reset it, each confirmed in a dialog.
    await page.getByRole("link", { name: "Breakers" }).click();
    const row = page.getByTestId("breakers").locator('tr[data-key="analytics"]');
    // By keyboard: Enter opens the confirmation, Escape cancels it, nothing changes.
    await row.getByTestId("force-open-analytics").focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Force breaker analytics open?" });
    await dialog.waitFor();
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    await row.filter({ hasText: "closed" }).waitFor();
    await row.getByTestId("force-open-analytics").click();
    await page.getByTestId("force-open-analytics-confirm").click();
    await row.filter({ hasText: "forced open" }).waitFor();
    const forced = await call("GET", "/v1/breakers", admin);
    const state = (b: { breakers: { name: string; state: string }[] }) =>
      b.breakers.find((x) => x.name === "analytics")?.state;
    assert.equal(state(forced.body), "forced_open");
    await row.getByTestId("reset-analytics").click();
    await page.getByTestId("reset-analytics-confirm").click();
    await row.filter({ hasText: "closed" }).waitFor();
    assert.equal(state((await call("GET", "/v1/breakers", admin)).body), "closed");

    // The edge goes away: a banner says so. A task runs meanwhile; once an
    // edge is back on the same address the page resumes with `since` and
    // shows the change it missed.
    await page.getByRole("link", { name: "Overview" }).click();
    await edge.stop("SIGTERM");
    await page.getByTestId("feed-banner").filter({ hasText: "disconnected" }).waitFor();
    const { id: missedId } = await queue.enqueue("noop", { echo: "while away" });
    await waitUntil(async () => (await queue.getTask(missedId))?.status === "succeeded", {
      timeoutMs: WAIT_MS,
      what: "the task run while the edge was down",
    });
    processes.push(await restartEdge(env, new URL(url).port));
    await page.getByTestId("feed-banner").waitFor({ state: "detached" });
    await page.getByTestId("live-tasks").locator(`tr[data-key="${missedId}"]`)
      .filter({ hasText: "succeeded" }).waitFor();
    assert.deepEqual(pageErrors(page), []);

    // Leads and models render from their routes (the funnel and the model list answer, even empty).
    await page.getByRole("link", { name: "Leads" }).click();
    await page.getByTestId("funnel").locator("tbody tr").first().waitFor();
    await page.getByTestId("leads").waitFor();
    await page.screenshot({ path: `${SHOTS}leads.png`, fullPage: true });
    await page.getByRole("link", { name: "Models" }).click();
    await page.getByTestId("models").locator("tbody tr").first().waitFor();
    await page.emulateMedia({ colorScheme: "dark" });
    await page.getByRole("link", { name: "Overview" }).click();
    await page.getByTestId("queue-depth").waitFor();
    await page.screenshot({ path: `${SHOTS}overview-dark.png`, fullPage: true });
    assert.deepEqual(await accessibilityViolations(page), [], "overview, dark");
    assert.deepEqual(pageErrors(page), []);

    // A viewer sees the breakers, its buttons are disabled, and the API
    // refuses the action when the page sends it anyway.
    const viewer = await signIn(browser, url, "viewer");
    await viewer.goto(`${url}/console#/breakers`);
    const viewerRow = viewer.getByTestId("breakers").locator('tr[data-key="analytics"]');
    await viewerRow.waitFor();
    for (const action of ["reset", "force-open", "disable"]) {
      assert.equal(await viewerRow.getByTestId(`${action}-analytics`).isDisabled(), true, action);
    }
    const refused = await viewer.evaluate(async () => {
      const res = await fetch("/v1/breakers/analytics/force-open", {
        method: "POST",
        headers: {
          Authorization: `Bearer ${sessionStorage.getItem("pleasant-cove-console-token")}`,
          "Content-Type": "application/json",
          "Idempotency-Key": crypto.randomUUID(),
        },
        body: "{}",
      });
      return { status: res.status, body: await res.json() };
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "forbidden");
    assert.equal(state((await call("GET", "/v1/breakers", admin)).body), "closed");
    // The token never reached a URL or a cookie.
    assert.equal(viewer.url().includes("eyJ"), false);
    assert.deepEqual(await viewer.context().cookies(), []);
    assert.deepEqual(pageErrors(viewer), []);
  } catch (err) {
    // What the pages showed when it failed, for the log and .tmp/screenshots/.
    for (const [i, context] of (browser?.contexts() ?? []).entries()) {
      for (const p of context.pages()) {
        await p.screenshot({ path: `${SHOTS}failure-${i}.png`, fullPage: true }).catch(() => {});
        console.error(`page ${i} (${p.url()}) errors: ${pageErrors(p).join("\n") || "none"}`);
      }
    }
    throw err;
  } finally {
    await browser?.close().catch(() => {});
    await Promise.all(processes.map((p) => p.stop("SIGTERM").catch(() => {})));
    await redis.close();
  }
});
