import assert from "node:assert/strict";
import { isPermanent, PermanentTaskError } from "../../queue/errors.ts";
import { PlacesRequestError, PlacesUnavailableError } from "./errors.ts";
import { PLACES_FIELD_MASK } from "./place_lead.ts";
import { createPlacesClient, type PlacesClientOptions } from "./places.ts";
import { toLeadRecords } from "./record.ts";

function fixture(name: string): Promise<string> {
  return Deno.readTextFile(new URL(`./testdata/${name}`, import.meta.url));
}

/** One scripted answer of the fake Places server. */
interface Reply {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

interface Seen {
  method: string;
  path: string;
  apiKey: string | null;
  fieldMask: string | null;
  body: Record<string, unknown>;
}

/**
 * A local server replaying `replies` in order (the last one repeats) and
 * recording each request; the clock and sleep are fake, so waits are
 * recorded instead of slept.
 */
async function withPlaces(
  replies: Reply[],
  fn: (ctx: {
    client: (extra?: Partial<PlacesClientOptions>) => ReturnType<typeof createPlacesClient>;
    seen: Seen[];
    sleeps: number[];
  }) => Promise<void>,
): Promise<void> {
  const seen: Seen[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    seen.push({
      method: req.method,
      path: new URL(req.url).pathname,
      apiKey: req.headers.get("x-goog-api-key"),
      fieldMask: req.headers.get("x-goog-fieldmask"),
      body: await req.json(),
    });
    const reply = replies[Math.min(seen.length, replies.length) - 1]!;
    return new Response(reply.body, {
      status: reply.status,
      headers: { "content-type": "application/json", ...reply.headers },
    });
  });
  let clock = 1_000_000;
  const sleeps: number[] = [];
  try {
    await fn({
      seen,
      sleeps,
      client: (extra = {}) =>
        createPlacesClient({
          apiKey: "test-key",
          baseUrl: `http://127.0.0.1:${server.addr.port}`,
          qps: 2,
          now: () => clock,
          sleep: (ms) => {
            sleeps.push(ms);
            clock += ms;
            return Promise.resolve();
          },
          ...extra,
        }),
    });
  } finally {
    await server.shutdown();
  }
}

const ok = async (name: string): Promise<Reply> => ({ status: 200, body: await fixture(name) });

Deno.test("searchText() follows nextPageToken and maps places to lead inputs", async () => {
  const pages = [await ok("places_search_page1.json"), await ok("places_search_page2.json")];
  await withPlaces(pages, async ({ client, seen, sleeps }) => {
    const result = await client().searchText("plumbers in Duluth");
    assert.equal(result.pages, 2);
    assert.equal(result.nextPageToken, null);
    assert.equal(seen.length, 2);
    for (const s of seen) {
      assert.equal(s.method, "POST");
      assert.equal(s.path, "/v1/places:searchText");
      assert.equal(s.apiKey, "test-key");
      assert.equal(s.fieldMask, PLACES_FIELD_MASK);
    }
    assert.deepEqual(seen[0]!.body, { textQuery: "plumbers in Duluth", pageSize: 20 });
    assert.deepEqual(seen[1]!.body, {
      textQuery: "plumbers in Duluth",
      pageSize: 20,
      pageToken: "AeeoHcK8vUXj3ZxR0Pn1-page2",
    });
    assert.deepEqual(sleeps, [500], "qps 2: the second request waits 500 ms");

    assert.deepEqual(result.leads[0], {
      source: "places",
      external_id: "ChIJN1t_tDeuEmsRUsoyG83frY4",
      name: "Northshore Plumbing & Heating",
      category: "Plumber",
      city: "Duluth",
      rating: 4.7,
      reviews: 212,
      has_website: false,
      website: null,
      phone: "+1 218-555-0117",
      email: null,
    });
    assert.equal(result.leads[1]!.has_website, true);
    assert.equal(result.leads[1]!.website, "https://lakesuperiordrain.example/");
    const uk = result.leads[2]!;
    assert.equal(uk.city, "Bristol", "postal_town stands in for locality");
    assert.equal(uk.category, "general contractor");
    assert.equal(uk.phone, "0117 496 0123");
    assert.equal(uk.rating, null);

    const { records, rejected } = await toLeadRecords(result.leads, { defaultRegion: "GB" });
    assert.deepEqual(rejected, []);
    assert.deepEqual(records.map((r) => r.phone), [
      "+12185550117",
      "+12185550188",
      "+441174960123",
    ]);
  });
});

Deno.test("searchText() stops at maxPages and returns the next token", async () => {
  await withPlaces([await ok("places_search_page1.json")], async ({ client, seen }) => {
    const result = await client().searchText("plumbers", { maxPages: 1, pageSize: 2 });
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.body.pageSize, 2);
    assert.equal(result.pages, 1);
    assert.equal(result.leads.length, 2);
    assert.equal(result.nextPageToken, "AeeoHcK8vUXj3ZxR0Pn1-page2");
  });
});

Deno.test("searchText() waits out a 429 with Retry-After, then succeeds", async () => {
  const throttled = {
    status: 429,
    body: await fixture("places_error_resource_exhausted.json"),
    headers: { "retry-after": "3" },
  };
  await withPlaces(
    [throttled, await ok("places_search_page2.json")],
    async ({ client, seen, sleeps }) => {
      const result = await client({ qps: 1000 }).searchText("plumbers");
      assert.equal(seen.length, 2);
      assert.equal(result.leads.length, 1);
      assert.deepEqual(sleeps, [3000]);
    },
  );
});

Deno.test("searchText() gives up on 429 after the retries, as a transient error", async () => {
  const throttled = { status: 429, body: await fixture("places_error_resource_exhausted.json") };
  await withPlaces([throttled], async ({ client, seen, sleeps }) => {
    await assert.rejects(client({ qps: 1000 }).searchText("plumbers"), (err) => {
      assert.ok(err instanceof PlacesUnavailableError);
      assert.equal(isPermanent(err), false);
      assert.match(err.message, /429 after 3 attempts/);
      return true;
    });
    assert.equal(seen.length, 3);
    assert.deepEqual(sleeps, [1000, 2000], "no Retry-After: doubling backoff");
  });
  const tooLong = { ...throttled, headers: { "retry-after": "120" } };
  await withPlaces([tooLong], async ({ client, seen, sleeps }) => {
    await assert.rejects(client().searchText("plumbers"), PlacesUnavailableError);
    assert.equal(seen.length, 1, "a wait beyond maxRetryAfterMs is not attempted");
    assert.deepEqual(sleeps, []);
  });
});

Deno.test("searchText() turns 400 INVALID_ARGUMENT into a permanent error", async () => {
  const bad = { status: 400, body: await fixture("places_error_invalid_argument.json") };
  await withPlaces([bad], async ({ client, seen }) => {
    await assert.rejects(client().searchText("plumbers"), (err) => {
      assert.ok(err instanceof PlacesRequestError);
      assert.ok(err instanceof PermanentTaskError);
      assert.equal(isPermanent(err), true);
      assert.equal(err.name, "PlacesRequestError");
      assert.deepEqual(err.provider, {
        httpStatus: 400,
        status: "INVALID_ARGUMENT",
        message: "API key not valid. Please pass a valid API key.",
      });
      assert.match(err.message, /400 INVALID_ARGUMENT: API key not valid/);
      return true;
    });
    assert.equal(seen.length, 1, "not retried");
  });
});

Deno.test("searchText() turns a 500 into a transient error", async () => {
  const down = { status: 500, body: await fixture("places_error_internal.json") };
  await withPlaces([down], async ({ client, seen }) => {
    await assert.rejects(client().searchText("plumbers"), (err) => {
      assert.ok(err instanceof PlacesUnavailableError);
      assert.equal(isPermanent(err), false);
      assert.equal(err.code, "dependency-unavailable");
      assert.equal(err.status, 503);
      assert.match(err.message, /500: Internal error encountered/);
      assert.deepEqual(err.details, {
        provider: "places",
        status: 500,
        provider_status: "INTERNAL",
      });
      return true;
    });
    assert.equal(seen.length, 1, "the queue retries, not the client");
  });
});

function fakeClient(fetch: PlacesClientOptions["fetch"], extra: Partial<PlacesClientOptions> = {}) {
  return createPlacesClient({
    apiKey: "k",
    baseUrl: "http://places.invalid",
    fetch,
    sleep: () => Promise.resolve(),
    ...extra,
  });
}

Deno.test("searchText() classifies network errors and timeouts as transient, with the cause", async () => {
  const refused = new TypeError("error sending request: connection refused");
  await assert.rejects(fakeClient(() => Promise.reject(refused)).searchText("q"), (err) => {
    assert.ok(err instanceof PlacesUnavailableError);
    assert.equal(err.cause, refused);
    return true;
  });
  // A fetch that only ends when its signal aborts: the client's timeout must.
  const hang: PlacesClientOptions["fetch"] = (_input, init) =>
    new Promise((_, reject) =>
      init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))
    );
  await assert.rejects(fakeClient(hang, { timeoutMs: 5 }).searchText("q"), (err) => {
    assert.ok(err instanceof PlacesUnavailableError);
    assert.match(err.message, /timed out after 5ms/);
    assert.equal((err.cause as Error).name, "TimeoutError");
    return true;
  });
});

Deno.test("searchText() rethrows the caller's abort as it is", async () => {
  const controller = new AbortController();
  const reason = new Error("task timed out");
  const hang: PlacesClientOptions["fetch"] = (_input, init) => {
    queueMicrotask(() => controller.abort(reason));
    return new Promise((_, reject) =>
      init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason))
    );
  };
  await assert.rejects(fakeClient(hang).searchText("q", { signal: controller.signal }), (err) => {
    assert.equal(err, reason);
    return true;
  });
});

Deno.test("searchText() understands a circuit breaker's fetch", async () => {
  // Breaker.fetch throws these instead of returning a 429 or calling out.
  let calls = 0;
  const sleeps: number[] = [];
  const page = await fixture("places_search_page2.json");
  const throttling: PlacesClientOptions["fetch"] = () => {
    calls++;
    if (calls === 1) {
      return Promise.reject(
        Object.assign(new Error("throttled"), { name: "BreakerThrottledError", retryAfterMs: 700 }),
      );
    }
    return Promise.resolve(new Response(page, { status: 200 }));
  };
  const result = await fakeClient(throttling, {
    sleep: (ms) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    now: () => 0,
    qps: 1000,
  }).searchText("q");
  assert.equal(calls, 2);
  assert.equal(result.leads.length, 1);
  assert.deepEqual(sleeps, [700]);

  const open = Object.assign(new Error("open"), { name: "BreakerOpenError" });
  await assert.rejects(fakeClient(() => Promise.reject(open)).searchText("q"), (err) => {
    assert.equal(err, open, "a refusing breaker is passed through unwrapped");
    return true;
  });
});

Deno.test("createPlacesClient() and searchText() check their options", async () => {
  assert.throws(() => createPlacesClient({ apiKey: " " }), TypeError);
  assert.throws(() => createPlacesClient({ apiKey: "k", qps: 0 }), /qps must be a positive number/);
  assert.throws(() => createPlacesClient({ apiKey: "k", maxThrottleRetries: -1 }), RangeError);
  assert.ok(createPlacesClient({ apiKey: "k", maxThrottleRetries: 0 }));
  assert.throws(() => createPlacesClient({ apiKey: "k", baseUrl: "not a url" }), TypeError);
  const client = fakeClient(() => Promise.reject(new Error("not called")));
  await assert.rejects(client.searchText("q", { pageSize: 21 }), RangeError);
  await assert.rejects(client.searchText("q", { maxPages: 0 }), /Cannot search Places: maxPages/);
  await assert.rejects(client.searchText("  "), TypeError);
});
