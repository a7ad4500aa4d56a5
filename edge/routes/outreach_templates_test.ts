import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { TEMPLATE_NAMES, TEMPLATES } from "../../shared/email/templates.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;
type Variable = { name: string; required: boolean; description: string; example: unknown };

Deno.test({
  name: "GET /v1/outreach/templates lists every template with its variables and a preview",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);

    await t.step(
      "the list: every template, in the list envelope, previews that read right",
      async () => {
        const res = await h.call("GET", "/v1/outreach/templates");
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.next_cursor, null);
        assert.equal(body.total, TEMPLATE_NAMES.length);
        assert.deepEqual(body.data.map((t: Json) => t.name), [...TEMPLATE_NAMES]);
        for (const tpl of body.data as Json[]) {
          const spec = TEMPLATES[tpl.name as (typeof TEMPLATE_NAMES)[number]];
          const vars = tpl.variables as Variable[];
          assert.deepEqual(
            vars.filter((v) => v.required).map((v) => v.name),
            Object.keys(spec.required),
          );
          assert.deepEqual(
            vars.filter((v) => !v.required).map((v) => v.name),
            Object.keys(spec.optional),
          );
          const preview = tpl.preview as Json;
          for (const v of vars) assert.equal((preview.variables as Json)[v.name], v.example);
          assert.doesNotMatch(String(preview.text), /Pleasant Cove from Pleasant Cove/);
          assert.match(
            String(preview.text),
            /Unsubscribe: http:\/\/.+\/v1\/unsubscribe\?token=preview/,
          );
          assert.match(String(preview.html), /^<!doctype html>/);
        }
        const intro = (body.data as Json[]).find((t) => t.name === "intro")!;
        assert.match(String((intro.preview as Json).text), /I'm Maya from Pleasant Cove\./);
        assert.equal((intro.preview as Json).subject, "A better web presence for Harbor Bakery");
      },
    );

    await t.step("one template by name; an unknown name is 404 template-not-found", async () => {
      const res = await h.call("GET", "/v1/outreach/templates/meeting_confirmation", {
        auth: h.tokens.viewer,
      });
      assert.equal(res.status, 200);
      const tpl = await res.json();
      assert.equal(tpl.name, "meeting_confirmation");
      assert.match(tpl.preview.subject, /^Confirmed: your call with Pleasant Cove on /);
      const missing = await h.call("GET", "/v1/outreach/templates/newsletter");
      assert.equal(missing.status, 404);
      const problem = await missing.json();
      assert.equal(problem.code, "template-not-found");
      assert.deepEqual(problem.known_templates, [...TEMPLATE_NAMES]);
      assert.match(problem.detail, /newsletter/);
    });

    await t.step("no token → 401; unknown query → 400; both described in OpenAPI", async () => {
      const anon = await h.call("GET", "/v1/outreach/templates", { auth: null });
      assert.equal(anon.status, 401);
      await anon.body?.cancel();
      const unknown = await h.call("GET", "/v1/outreach/templates?page=2");
      assert.equal(unknown.status, 400);
      assert.equal((await unknown.json()).invalid_fields[0].field, "query.page");
      const spec = await (await h.app.request("/openapi.json")).json();
      assert.ok(spec.paths["/v1/outreach/templates"]?.get?.description);
      assert.ok(spec.paths["/v1/outreach/templates/{name}"]?.get?.responses["404"]);
      assert.ok(spec.components.schemas.EmailTemplate);
    });
  },
});
