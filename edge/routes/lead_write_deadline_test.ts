/**
 * `POST /v1/leads` with an Idempotency-Key while the pooled Postgres
 * connection silently stops answering (the fault proxy's blackhole in front
 * of dev/neon_proxy.ts): the write's deadline (`DB_WRITE_TIMEOUT_MS`) answers
 * 503 with Retry-After instead of hanging, and the retry with the same key,
 * after the fault is lifted, creates the lead once.
 */
import assert from "node:assert/strict";
import { silentPostgres } from "../../testing/silent_postgres.ts";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The Neon Pool keeps WebSocket ops alive between queries (neon-local.md §5): sanitizers off.
const opts = noSanitizers;

Deno.test({
  name:
    "a lead write on a silent database connection is 503 at its deadline; the retry applies once",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const silent = await silentPostgres(stack);
    await using proxy = silent.proxy;
    await using h = await routeHarness(stack, { env: silent.env });
    const { sql } = stack.makeDeps();
    const city = `Silent-${h.run}`;
    const post = () =>
      h.call("POST", "/v1/leads", {
        json: { name: "Silent", city },
        headers: { "Idempotency-Key": `silent-${h.run}` },
      });
    try {
      await h.deps.sql.query("SELECT 1");
      proxy.setFault({ kind: "blackhole" });
      const failed = await post();
      assert.equal(failed.status, 503);
      assert.ok(failed.headers.get("Retry-After"), "Retry-After is set");
      assert.equal((await failed.json()).code, "dependency-unavailable");
      assert.equal(h.deps.sql.totalCount, 0, "the silent connection left the pool");

      proxy.setFault({ kind: "pass" });
      const created = await post();
      assert.equal(created.status, 201, await created.clone().text());
      const replay = await post();
      assert.equal(replay.status, 201);
      assert.equal((await replay.json()).id, (await created.json()).id);
      const { rows } = await sql.query("SELECT id FROM businesses WHERE city = $1", [city]);
      assert.equal(rows.length, 1, "one lead");
    } finally {
      await sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [city],
      );
      await sql.query("DELETE FROM businesses WHERE city = $1", [city]);
    }
  },
});

Deno.test({
  name: "a lead write whose client gave up and whose database failed is a 503, not a stored 500",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const silent = await silentPostgres(stack);
    await using proxy = silent.proxy;
    await using h = await routeHarness(stack, { env: silent.env });
    const { sql } = stack.makeDeps();
    const city = `Gone-${h.run}`;
    const headers = {
      authorization: h.tokens.minerva,
      "content-type": "application/json",
      "idempotency-key": `gone-${h.run}`,
    };
    const body = JSON.stringify({ name: "Gone", city });
    try {
      await h.deps.sql.query("SELECT 1");
      proxy.setFault({ kind: "blackhole" });
      // The client times out (an edge paused past its patience, found by deno task chaos).
      const controller = new AbortController();
      const pending = h.app.request("/v1/leads", {
        method: "POST",
        headers,
        body,
        signal: controller.signal,
      });
      controller.abort();
      const failed = await pending;
      assert.equal(failed.status, 503, await failed.clone().text());
      await failed.body?.cancel();

      proxy.setFault({ kind: "pass" });
      const retried = await h.app.request("/v1/leads", { method: "POST", headers, body });
      assert.equal(retried.status, 201, await retried.clone().text());
      assert.equal(retried.headers.get("idempotency-replayed"), null);
      await retried.body?.cancel();
    } finally {
      await sql.query(
        "DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM businesses WHERE city = $1)",
        [city],
      );
      await sql.query("DELETE FROM businesses WHERE city = $1", [city]);
    }
  },
});
