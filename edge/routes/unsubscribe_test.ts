import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { signUnsubscribeToken, unsubscribeUrl } from "../../shared/email/unsubscribe.ts";
import {
  assertThrottledAfterThree,
  routeHarness,
  THREE_ANONYMOUS_RATE_LIMITS,
} from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

const ONE_CLICK = "List-Unsubscribe=One-Click";
const FORM = "application/x-www-form-urlencoded";

Deno.test({
  name: "/v1/unsubscribe is public: a signed token suppresses the address, idempotently",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const secret = h.deps.config.email.unsubscribeSecret;
    const address = (name: string) => `${name}-${h.run}@unsub.example`;
    const tokenFor = (a: string) => encodeURIComponent(signUnsubscribeToken(a, secret));
    const suppressed = async (a: string) =>
      (await h.deps.sql.query<{ reason: string }>(
        "SELECT reason FROM email_suppressions WHERE address = $1",
        [a],
      )).rows;

    try {
      await t.step(
        "GET (the link) changes nothing: its page's one button posts the form",
        async () => {
          const a = address("link");
          // The exact link send_email puts in every email.
          const link = new URL(
            unsubscribeUrl(`${h.deps.config.publicBaseUrl}/v1`, signUnsubscribeToken(a, secret)),
          );
          assert.equal(link.pathname, "/v1/unsubscribe");
          const res = await h.call("GET", link.pathname + link.search, { auth: null });
          assert.equal(res.status, 200, await res.clone().text());
          assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
          assert.equal(res.headers.get("cache-control"), "no-store");
          assert.equal(res.headers.get("referrer-policy"), "no-referrer");
          const page = await res.text();
          assert.match(page, /Unsubscribe from Pleasant Cove/);
          assert.ok(page.includes(a));
          // A scanner or prefetcher that follows the link unsubscribes nobody.
          assert.deepEqual(await suppressed(a), []);

          // The browser submits the page's form to the page's own URL (no action).
          const form = /<form method="post">([\s\S]*?)<\/form>/.exec(page);
          assert.ok(form, "the page has one POST form without an action");
          const fields = [
            ...form[1]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]+)">/g),
          ]
            .map(([, name, value]) => [name!, value!]);
          assert.deepEqual(fields, [["List-Unsubscribe", "One-Click"]]);
          const clicked = await h.call("POST", link.pathname + link.search, {
            auth: null,
            body: new URLSearchParams(fields).toString(),
            type: FORM,
          });
          assert.equal(clicked.status, 200, await clicked.clone().text());
          assert.match(await clicked.text(), /You are unsubscribed/);
          assert.deepEqual(await suppressed(a), [{ reason: "unsubscribed" }]);
        },
      );

      await t.step(
        "the address is stored lowercased; a bearer token is simply ignored",
        async () => {
          const a = address("Mixed.Case");
          const res = await h.call("POST", `/v1/unsubscribe?token=${tokenFor(a)}`, {
            auth: "Bearer not-even-a-jwt",
            body: ONE_CLICK,
            type: FORM,
          });
          assert.equal(res.status, 200);
          await res.body?.cancel();
          assert.equal((await suppressed(a.toLowerCase())).length, 1);
        },
      );

      await t.step("POST one-click (RFC 8058), form-encoded or multipart → 200", async () => {
        const a = address("oneclick");
        const res = await h.call("POST", `/v1/unsubscribe?token=${tokenFor(a)}`, {
          auth: null,
          body: ONE_CLICK,
          type: FORM,
        });
        assert.equal(res.status, 200, await res.clone().text());
        await res.body?.cancel();
        assert.deepEqual(await suppressed(a), [{ reason: "unsubscribed" }]);
        const again = await h.call("POST", `/v1/unsubscribe?token=${tokenFor(a)}`, {
          auth: null,
          body: ONE_CLICK,
          type: `${FORM}; charset=utf-8`,
        });
        assert.equal(again.status, 200);
        await again.body?.cancel();

        const b = address("multipart");
        const form = new FormData();
        form.set("List-Unsubscribe", "One-Click");
        const multipart = await h.app.request(`/v1/unsubscribe?token=${tokenFor(b)}`, {
          method: "POST",
          body: form,
        });
        assert.equal(multipart.status, 200, await multipart.clone().text());
        await multipart.body?.cancel();
        assert.equal((await suppressed(b)).length, 1);
      });

      await t.step(
        "POST is not replayed through Idempotency-Key (no principal to scope it)",
        async () => {
          const a = address("keyed");
          const init = {
            auth: null,
            body: ONE_CLICK,
            type: FORM,
            headers: { "idempotency-key": "same-key" },
          };
          const first = await h.call("POST", `/v1/unsubscribe?token=${tokenFor(a)}`, init);
          const second = await h.call("POST", `/v1/unsubscribe?token=${tokenFor(a)}`, init);
          assert.equal(first.status, 200);
          assert.equal(second.status, 200);
          assert.equal(second.headers.get("idempotency-replayed"), null);
          await first.body?.cancel();
          await second.body?.cancel();
        },
      );

      await t.step("tampered, foreign or missing tokens → 400, nothing written", async () => {
        const a = address("tampered");
        const good = signUnsubscribeToken(a, secret);
        const [, mac] = good.split(".");
        const other = btoa(address("victim")).replaceAll("+", "-").replaceAll("/", "_")
          .replace(/=+$/, "");
        const cases: [string, string][] = [
          [`token=${encodeURIComponent(`${other}.${mac}`)}`, "invalid-unsubscribe-token"],
          [`token=${encodeURIComponent(`${good}x`)}`, "invalid-unsubscribe-token"],
          [
            `token=${encodeURIComponent(signUnsubscribeToken(a, "another-secret-0123456789"))}`,
            "invalid-unsubscribe-token",
          ],
          ["token=garbage", "invalid-unsubscribe-token"],
          ["token=", "invalid-request"],
          ["", "invalid-request"],
        ];
        for (const [query, code] of cases) {
          for (const method of ["GET", "POST"]) {
            const res = await h.call(method, `/v1/unsubscribe?${query}`, {
              auth: null,
              ...(method === "POST" ? { body: ONE_CLICK, type: FORM } : {}),
            });
            assert.equal(res.status, 400, `${method} ${query}`);
            assert.equal(res.headers.get("content-type"), "application/problem+json");
            assert.equal((await res.json()).code, code, `${method} ${query}`);
          }
        }
        assert.equal((await suppressed(a)).length, 0);
        assert.equal((await suppressed(address("victim"))).length, 0);
      });

      await t.step(
        "a rotated UNSUBSCRIBE_SECRET applies per request; listed old links keep working",
        async () => {
          const email = h.deps.config.email;
          const before = { sign: email.unsubscribeSecret, verify: email.unsubscribeVerifySecrets };
          const a = address("rotated");
          const oldLink = `/v1/unsubscribe?token=${
            encodeURIComponent(signUnsubscribeToken(a, secret))
          }`;
          const NEW = "rotated-unsubscribe-secret-0123456789";
          try {
            // What shared/secrets/apply.ts does with a two-line rotated file.
            email.unsubscribeSecret = NEW;
            email.unsubscribeVerifySecrets = [NEW, secret];
            const newLink = `/v1/unsubscribe?token=${
              encodeURIComponent(signUnsubscribeToken(a, NEW))
            }`;
            for (const link of [oldLink, newLink]) {
              const res = await h.call("GET", link, { auth: null });
              await res.body?.cancel();
              assert.equal(res.status, 200, link);
            }
            email.unsubscribeVerifySecrets = [NEW];
            const dropped = await h.call("GET", oldLink, { auth: null });
            await dropped.body?.cancel();
            assert.equal(dropped.status, 400, "the old secret no longer listed");
          } finally {
            email.unsubscribeSecret = before.sign;
            email.unsubscribeVerifySecrets = before.verify;
          }
        },
      );

      await t.step(
        "a browser following a broken link gets an HTML page, an API client problem+json",
        async () => {
          const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
          for (const method of ["GET", "POST"]) {
            const res = await h.call(method, "/v1/unsubscribe?token=garbage", {
              auth: null,
              headers: { accept: browser },
              ...(method === "POST" ? { body: ONE_CLICK, type: FORM } : {}),
            });
            assert.equal(res.status, 400, method);
            assert.equal(res.headers.get("content-type"), "text/html; charset=UTF-8");
            assert.equal(res.headers.get("vary"), "Accept");
            assert.match(res.headers.get("content-security-policy") ?? "", /^default-src 'none'/);
            const page = await res.text();
            assert.match(page, /^<!doctype html>/);
            assert.match(page, /<h1[^>]*>Invalid unsubscribe link<\/h1>/);
            assert.match(page, /<p>This unsubscribe link is not valid \(/);
            assert.doesNotMatch(page, /"code"/);
          }
          // The gateway's own refusal (415: not a form) gets a page too.
          const notForm = await h.call("POST", "/v1/unsubscribe?token=garbage", {
            auth: null,
            headers: { accept: browser },
            body: "{}",
            type: "application/json; charset=utf-8",
          });
          assert.ok([400, 415].includes(notForm.status), String(notForm.status));
          assert.match(notForm.headers.get("content-type") ?? "", /^text\/html/);
          await notForm.body?.cancel();
          for (
            const accept of ["application/json", "*/*", "application/problem+json, text/html;q=0.5"]
          ) {
            const res = await h.call("GET", "/v1/unsubscribe?token=garbage", {
              auth: null,
              headers: { accept },
            });
            assert.equal(res.headers.get("content-type"), "application/problem+json", accept);
            assert.equal((await res.json()).code, "invalid-unsubscribe-token");
          }
        },
      );

      await t.step("POST needs the one-click form body (400) as a form (415)", async () => {
        const a = address("badbody");
        const path = `/v1/unsubscribe?token=${tokenFor(a)}`;
        const cases: [string, string, number][] = [
          ["List-Unsubscribe=Yes", FORM, 400],
          ["", FORM, 400],
          [JSON.stringify({ "List-Unsubscribe": "One-Click" }), "application/json", 415],
          [ONE_CLICK, "text/plain", 415],
        ];
        for (const [body, type, status] of cases) {
          const res = await h.call("POST", path, { auth: null, body, type });
          assert.equal(res.status, status, `${type} ${body}`);
          await res.body?.cancel();
        }
        assert.equal((await suppressed(a)).length, 0);
      });

      await t.step("only GET and POST of exactly /v1/unsubscribe are public", async () => {
        const token = tokenFor(address("scope"));
        const cases: [string, string, number][] = [
          ["HEAD", `/v1/unsubscribe?token=${token}`, 401],
          ["GET", `/v1/unsubscribe/?token=${token}`, 401],
          ["GET", `/v1/unsubscribe/x?token=${token}`, 401],
          ["DELETE", `/v1/unsubscribe?token=${token}`, 401],
          ["GET", "/v1/me", 401],
          // Outside /v1 entirely: no route, and nothing written.
          ["GET", `/V1/unsubscribe?token=${token}`, 404],
        ];
        for (const [method, path, status] of cases) {
          const res = await h.call(method, path, { auth: null });
          assert.equal(res.status, status, `${method} ${path}`);
          await res.body?.cancel();
        }
        assert.equal((await suppressed(address("scope"))).length, 0);
        // Form bodies stay refused everywhere else, before authentication.
        const form = await h.call("POST", "/v1/leads", { body: ONE_CLICK, type: FORM });
        assert.equal(form.status, 415);
        await form.body?.cancel();
      });

      await t.step("the routes are in the OpenAPI document without security", async () => {
        const spec = await (await h.app.request("/openapi.json")).json();
        const ops = spec.paths["/v1/unsubscribe"];
        assert.deepEqual(ops?.get?.security, []);
        assert.deepEqual(ops?.post?.security, []);
      });
    } finally {
      await h.deps.sql.query("DELETE FROM email_suppressions WHERE address LIKE $1", [
        `%-${h.run}@unsub.example`,
      ]);
    }
  },
});

Deno.test({
  name: "/v1/unsubscribe is rate-limited by client IP under the anonymous policy",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const h = await routeHarness(stack, {
      env: {
        RATE_LIMITS: THREE_ANONYMOUS_RATE_LIMITS,
      },
    });
    const a = `ratelimit-${h.run}@unsub.example`;
    const token = encodeURIComponent(
      signUnsubscribeToken(a, h.deps.config.email.unsubscribeSecret),
    );
    try {
      // app.request() has no socket, so every caller is the same "unknown" IP,
      // which other suites on the shared stack may also have charged: assert
      // the shape (200s, then only 429s, by the 4th request at the latest).
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await h.call("GET", `/v1/unsubscribe?token=${token}`, { auth: null });
        statuses.push(res.status);
        assert.match(res.headers.get("ratelimit-policy") ?? "", /^"anonymous";q=3;w=60$/);
        await res.body?.cancel();
      }
      assertThrottledAfterThree(statuses, 200);
    } finally {
      await h.deps.sql.query("DELETE FROM email_suppressions WHERE address = $1", [a]);
    }
  },
});

Deno.test({
  name:
    "/v1/unsubscribe has its own bucket: an address that spent `anonymous` can still unsubscribe",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const h = await routeHarness(stack, {
      env: {
        RATE_LIMITS: JSON.stringify({
          default: { limit: 100_000, window_s: 60 },
          anonymous: { limit: 1, window_s: 60 },
          unsubscribe: { limit: 1000, window_s: 60 },
        }),
      },
    });
    const a = `own-bucket-${h.run}@unsub.example`;
    const token = encodeURIComponent(
      signUnsubscribeToken(a, h.deps.config.email.unsubscribeSecret),
    );
    try {
      // Token guessing from the same address exhausts `anonymous` (401, then 429s).
      const guesses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await h.call("GET", "/v1/leads", { auth: "Bearer not.a.token" });
        guesses.push(res.status);
        await res.body?.cancel();
      }
      assert.equal(guesses.at(-1), 429, `statuses ${guesses}`);
      const res = await h.call("GET", `/v1/unsubscribe?token=${token}`, { auth: null });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("ratelimit-policy") ?? "", /^"unsubscribe";q=1000;w=60$/);
      await res.body?.cancel();
    } finally {
      await h.deps.sql.query("DELETE FROM email_suppressions WHERE address = $1", [a]);
    }
  },
});
