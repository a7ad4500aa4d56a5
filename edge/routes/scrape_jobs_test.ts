import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../../testing/stack.ts";
import { firstCsvRecord } from "./scrape_jobs.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;

Deno.test("firstCsvRecord() ends at the first newline outside quotes after a non-blank line", () => {
  assert.equal(firstCsvRecord("name,city\nA,B\n"), "name,city");
  assert.equal(firstCsvRecord("\n  \r\nname,city\r\nA,B"), "\n  \r\nname,city\r");
  assert.equal(firstCsvRecord('"na\nme","say ""hi""\n"\nA,B'), '"na\nme","say ""hi""\n"');
  assert.equal(firstCsvRecord("name"), "name");
  assert.equal(firstCsvRecord(""), "");
});

Deno.test({
  name: "/v1/scrape-jobs and /v1/leads/import through the gateway: 202 + scrape_leads, 400/413/415",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // The queue's payload limit sits below the body limit, so both 413s are reachable.
    const h = await routeHarness(stack, {
      env: { MAX_BODY_BYTES: "16384", PLACES_API_KEY: "test-key" },
      queue: { maxPayloadBytes: 4096 },
    });
    const upload = (body: BodyInit, type: string, auth?: string | null, query = "") =>
      h.call("POST", `/v1/leads/import${query}`, { body, type, auth });
    const csv = `name,city,email\nCove Bakery ${h.run},Portland,hi@cove.example\n`;

    await t.step(
      "without PLACES_API_KEY a search is 503 places-not-configured, nothing queued",
      async () => {
        const bare = await routeHarness(stack);
        const before = await bare.queue.stats();
        const res = await bare.call("POST", "/v1/scrape-jobs", { json: { query: "bakeries" } });
        assert.equal(res.status, 503);
        assert.equal((await res.json()).code, "places-not-configured");
        assert.deepEqual(await bare.queue.stats(), before);
      },
    );

    await t.step("POST /v1/scrape-jobs queues a places search", async () => {
      const res = await h.call("POST", "/v1/scrape-jobs", {
        json: { query: "bakeries", location: "Portland, ME" },
      });
      assert.equal(res.status, 202, await res.clone().text());
      const body = await res.json();
      assert.equal(body.status, "queued");
      assert.equal(res.headers.get("location"), `/v1/tasks/${body.task_id}`);
      const task = await h.queue.getTask(body.task_id);
      assert.equal(task?.type, "scrape_leads");
      assert.equal(task?.priority, "low");
      assert.deepEqual(task?.payload, {
        provider: "places",
        query: "bakeries",
        location: "Portland, ME",
        max_pages: 3,
      });
      const explicit = await h.call("POST", "/v1/scrape-jobs", {
        auth: h.tokens.operator,
        json: { query: "florists", provider: "places", max_pages: 1 },
      });
      assert.equal(explicit.status, 202);
      const task2 = await h.queue.getTask((await explicit.json()).task_id);
      assert.deepEqual(task2?.payload, { provider: "places", query: "florists", max_pages: 1 });
    });

    await t.step("scrape-jobs: auth and validation", async () => {
      const anon = await h.call("POST", "/v1/scrape-jobs", { json: { query: "x" }, auth: null });
      assert.equal(anon.status, 401);
      await anon.body?.cancel();
      const viewer = await h.call("POST", "/v1/scrape-jobs", {
        json: { query: "x" },
        auth: h.tokens.viewer,
      });
      assert.equal(viewer.status, 403);
      await viewer.body?.cancel();
      const cases: [unknown, string][] = [
        [{}, "body.query"],
        [{ query: "  " }, "body.query"],
        [{ query: "x".repeat(201) }, "body.query"],
        [{ query: "x", provider: "file" }, "body.provider"],
        [{ query: "x", max_pages: 11 }, "body.max_pages"],
        [{ query: "x", max_pages: 0 }, "body.max_pages"],
        [{ query: "x", content: "name\nA" }, "body.content"],
      ];
      for (const [json, field] of cases) {
        const res = await h.call("POST", "/v1/scrape-jobs", { json });
        assert.equal(res.status, 400, JSON.stringify(json));
        const problem = await res.json();
        assert.deepEqual(
          problem.invalid_fields.map((f: { field: string }) => f.field),
          [field],
          JSON.stringify(json),
        );
        if (field === "body.provider") assert.match(problem.detail, /\/v1\/leads\/import/);
      }
    });

    await t.step("text/csv is accepted on /v1/leads/import and nowhere else (415)", async () => {
      const res = await upload(csv, "text/csv", undefined, "?filename=march.csv");
      assert.equal(res.status, 202, await res.clone().text());
      const body = await res.json();
      assert.equal(res.headers.get("location"), `/v1/tasks/${body.task_id}`);
      const task = await h.queue.getTask(body.task_id);
      assert.equal(task?.type, "scrape_leads");
      assert.deepEqual(task?.payload, {
        provider: "file",
        format: "csv",
        content: csv,
        filename: "march.csv",
      });
      // The same file again within the queue's window is the same task.
      const again = await upload(csv, "text/csv; charset=utf-8", h.tokens.operator);
      assert.equal(again.status, 202);
      await again.body?.cancel();

      for (const path of ["/v1/scrape-jobs", "/v1/leads", "/v1/outreach/emails", "/v1/tasks"]) {
        const refused = await h.call("POST", path, { body: csv, type: "text/csv" });
        assert.equal(refused.status, 415, path);
        const problem = await refused.json();
        assert.equal(problem.code, "unsupported-media-type");
        assert.equal(refused.headers.get("accept-post"), "application/json");
      }
      const plain = await upload(csv, "text/plain");
      assert.equal(plain.status, 415);
      assert.equal(plain.headers.get("accept-post"), "application/json, text/csv");
      await plain.body?.cancel();
    });

    await t.step("imports need a token (401) and control access (403)", async () => {
      const anon = await upload(csv, "text/csv", null);
      assert.equal(anon.status, 401);
      await anon.body?.cancel();
      const viewer = await upload(csv, "text/csv", h.tokens.viewer);
      assert.equal(viewer.status, 403);
      await viewer.body?.cancel();
    });

    await t.step("a JSON array is imported with format json", async () => {
      const items = JSON.stringify([{ name: `Json Cafe ${h.run}`, city: "Bath" }]);
      const res = await upload(items, "application/json");
      assert.equal(res.status, 202, await res.clone().text());
      const task = await h.queue.getTask((await res.json()).task_id);
      assert.deepEqual(task?.payload, { provider: "file", format: "json", content: items });
    });

    await t.step(
      "files that cannot be read as a whole → 400 invalid-csv / invalid-json",
      async () => {
        const cases: [BodyInit, string, string][] = [
          ["", "text/csv", "invalid-csv"],
          ["\n\n", "text/csv", "invalid-csv"],
          ["Cove Bakery,Portland,hi@cove.example\n", "text/csv", "invalid-csv"],
          ["city,email\nPortland,hi@cove.example\n", "text/csv", "invalid-csv"],
          ["name,name\nA,B\n", "text/csv", "invalid-csv"],
          [new Uint8Array([0x6e, 0x61, 0x6d, 0x65, 0x0a, 0xff, 0xfe]), "text/csv", "invalid-csv"],
          ['{"name":"A"}', "application/json", "invalid-json"],
          ["[{", "application/json", "invalid-json"],
          ["", "application/json", "invalid-json"],
        ];
        for (const [body, type, code] of cases) {
          const res = await upload(body, type);
          assert.equal(res.status, 400, String(body));
          assert.equal((await res.json()).code, code, String(body));
        }
        // Header quirks the worker's parser accepts pass here too: BOM, CRLF, case, quotes.
        const quirky = await upload(
          '\uFEFF"Name",CITY\r\n"Cove, Inc",Portland\r\n',
          "text/csv",
        );
        assert.equal(quirky.status, 202, await quirky.clone().text());
        await quirky.body?.cancel();
      },
    );

    await t.step(
      "oversized uploads → 413: the body limit and the queue's payload limit",
      async () => {
        const rows = (bytes: number) => {
          let text = "name,city\n";
          for (let i = 0; text.length < bytes; i++) text += `Shop ${i} ${h.run},Portland\n`;
          return text;
        };
        const tooBig = await upload(rows(20_000), "text/csv");
        assert.equal(tooBig.status, 413);
        const problem = await tooBig.json();
        assert.equal(problem.code, "payload-too-large");
        assert.match(problem.detail, /16384/);

        const overQueue = await upload(rows(8_000), "text/csv");
        assert.equal(overQueue.status, 413, await overQueue.clone().text());
        const queued = await overQueue.json();
        assert.equal(queued.code, "payload-too-large");
        assert.equal(queued.limit, 4096);
      },
    );

    await t.step("fuzzed bodies never produce a 5xx", async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.anything(),
            fc.record({
              query: fc.string(),
              location: fc.string(),
              provider: fc.constantFrom("places", "file", 1),
              max_pages: fc.oneof(fc.integer(), fc.double()),
            }, { requiredKeys: [] }),
          ),
          async (json) => {
            const res = await h.call("POST", "/v1/scrape-jobs", { json });
            assert.ok(res.status < 500, `${JSON.stringify(json)} → ${res.status}`);
            await res.body?.cancel();
          },
        ),
        { numRuns: 150 },
      );
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(fc.string(), fc.json(), fc.string().map((row) => `name,city\n${row}\n`)),
          fc.constantFrom("text/csv", "application/json"),
          async (body, type) => {
            const res = await upload(body, type);
            assert.ok(res.status < 500, `${type} ${JSON.stringify(body)} → ${res.status}`);
            await res.body?.cancel();
          },
        ),
        { numRuns: 150 },
      );
    });

    await t.step("both routes are in the OpenAPI document", async () => {
      const spec = await (await h.app.request("/openapi.json")).json();
      assert.ok(spec.paths["/v1/scrape-jobs"]?.post);
      const content = spec.paths["/v1/leads/import"]?.post?.requestBody?.content as Json;
      assert.deepEqual(Object.keys(content).sort(), ["application/json", "text/csv"]);
    });
  },
});
