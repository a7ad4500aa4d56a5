import assert from "node:assert/strict";
import fc from "fast-check";
import { useTestStack } from "../../testing/stack.ts";
import { renderTemplate } from "../../shared/email/templates.ts";
import { outreachEmailKey } from "./outreach.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;

Deno.test("outreachEmailKey() is one key per recipient, template, lead and UTC day", async () => {
  const lead = "5b0c3f9e-7d1c-4a8e-9d55-0f3c2a1b9e77";
  const at = (iso: string) => Date.parse(iso);
  const key = (to: string, now: number, template = "intro") =>
    outreachEmailKey({ leadId: lead, template, to, now });
  const morning = await key("Owner@Harbor.example", at("2026-03-03T00:00:01Z"));
  assert.equal(morning, await key(" owner@harbor.example", at("2026-03-03T23:59:59Z")));
  assert.match(morning, /^send_email:5b0c3f9e-[0-9a-f-]+:intro:[0-9a-f]{32}:2026-03-03$/);
  assert.notEqual(morning, await key("owner@harbor.example", at("2026-03-04T00:00:00Z")));
  assert.notEqual(morning, await key("other@harbor.example", at("2026-03-03T12:00:00Z")));
  assert.notEqual(
    morning,
    await key("owner@harbor.example", at("2026-03-03T12:00:00Z"), "follow_up"),
  );
  // The queue accepts 1-200 printable ASCII characters, whatever the address.
  const long = await key(
    `${"ü".repeat(60)}@${"x".repeat(180)}.example`,
    at("2026-03-03T12:00:00Z"),
  );
  assert.ok(/^[\x21-\x7e]{1,200}$/.test(long), long);
});

Deno.test({
  name: "POST /v1/outreach/emails through the gateway: auth, validation, 202 and one task a day",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    // A fixed clock: both requests of the "same day" step share one UTC day.
    const t0 = Date.now();
    const h = await routeHarness(stack, { now: () => t0 });
    const send = (json: unknown, auth?: string | null, headers?: Record<string, string>) =>
      h.call("POST", "/v1/outreach/emails", { json, auth, headers });
    const vars = { sender_name: "Maya" };

    try {
      const lead = await h.lead({ name: `Harbor Bakery ${h.run}`, email: "Owner@Harbor.example" });
      const noEmail = await h.lead({ name: `Quiet Deli ${h.run}` });

      await t.step("no token → 401; a viewer may not send → 403; operators may", async () => {
        const anon = await send({ lead_id: lead.id, template: "intro", variables: vars }, null);
        assert.equal(anon.status, 401);
        assert.equal((await anon.json()).code, "missing-token");
        const viewer = await send(
          { lead_id: lead.id, template: "intro", variables: vars },
          h.tokens.viewer,
        );
        assert.equal(viewer.status, 403);
        assert.equal((await viewer.json()).code, "forbidden");
        const operator = await send(
          { lead_id: lead.id, template: "follow_up", variables: vars },
          h.tokens.operator,
        );
        assert.equal(operator.status, 202, await operator.clone().text());
        await operator.body?.cancel();
      });

      await t.step("sa:minerva queues send_email: 202, Location, the task's payload", async () => {
        const res = await send({
          lead_id: lead.id,
          template: "intro",
          variables: { ...vars, booking_url: "https://cal.example/maya", years: 3 },
        });
        assert.equal(res.status, 202, await res.clone().text());
        const body = await res.json();
        assert.match(body.task_id, /^[0-9a-f-]{36}$/);
        assert.deepEqual(body, {
          task_id: body.task_id,
          status: "queued",
          status_url: `/v1/tasks/${body.task_id}`,
          created: true,
        });
        assert.equal(res.headers.get("location"), body.status_url);
        const task = await h.queue.getTask(body.task_id);
        assert.equal(task?.type, "send_email");
        assert.equal(task?.status, "pending");
        assert.deepEqual(task?.payload, {
          lead_id: lead.id,
          template: "intro",
          variables: { ...vars, booking_url: "https://cal.example/maya", years: 3 },
        });
        assert.ok(task?.idempotencyKey.startsWith(`send_email:${lead.id}:intro:`));
      });

      await t.step("the same email to the same lead on the same day → the same task", async () => {
        const first = await (await send({
          lead_id: lead.id,
          template: "follow_up",
          variables: vars,
          to: "owner@harbor.example",
        })).json();
        // Other variables and the address's case do not make it another email.
        const again = await send({
          lead_id: lead.id,
          template: "follow_up",
          variables: { sender_name: "Someone else" },
          to: "OWNER@harbor.example",
        });
        assert.equal(again.status, 202);
        const second = await again.json();
        assert.equal(second.task_id, first.task_id);
        assert.equal(second.created, false);
        // `to` defaulting to the lead's address is the same recipient too.
        const byDefault = await (await send({
          lead_id: lead.id,
          template: "follow_up",
          variables: vars,
        })).json();
        assert.equal(byDefault.task_id, first.task_id);
        const otherRecipient = await (await send({
          lead_id: lead.id,
          template: "follow_up",
          variables: vars,
          to: "manager@harbor.example",
        })).json();
        assert.notEqual(otherRecipient.task_id, first.task_id);
        assert.equal(otherRecipient.created, true);
      });

      await t.step("an Idempotency-Key replays the HTTP response", async () => {
        const key = `k-${crypto.randomUUID()}`;
        const json = { lead_id: lead.id, template: "intro", variables: vars };
        const first = await send(json, undefined, { "idempotency-key": key });
        const replay = await send(json, undefined, { "idempotency-key": key });
        assert.equal(replay.status, 202);
        assert.equal(replay.headers.get("idempotency-replayed"), "true");
        assert.equal((await replay.json()).task_id, (await first.json()).task_id);
      });

      await t.step("domain errors: 404, 422 with stable codes, nothing queued", async () => {
        const cases: [Json, number, string, Json?][] = [
          [
            { lead_id: crypto.randomUUID(), template: "intro", variables: vars },
            404,
            "lead-not-found",
          ],
          [{ lead_id: lead.id, template: "newsletter", variables: vars }, 422, "unknown-template", {
            known_templates: ["intro", "follow_up", "meeting_confirmation"],
          }],
          [{ lead_id: lead.id, template: "intro" }, 422, "missing-template-variables", {
            missing: ["sender_name"],
          }],
          [
            { lead_id: lead.id, template: "meeting_confirmation", variables: vars },
            422,
            "missing-template-variables",
            { missing: ["starts_at", "duration_min"] },
          ],
          [
            {
              lead_id: lead.id,
              template: "intro",
              variables: { ...vars, booking_url: "javascript:alert(1)" },
            },
            422,
            "invalid-template-variables",
          ],
          [
            { lead_id: noEmail.id, template: "intro", variables: vars },
            422,
            "lead-has-no-email",
            { lead_id: noEmail.id },
          ],
        ];
        const before = (await h.queue.stats()).enqueued ?? 0;
        for (const [json, status, code, extra] of cases) {
          const res = await send(json);
          assert.equal(res.status, status, JSON.stringify(json));
          assert.equal(res.headers.get("content-type"), "application/problem+json");
          const problem = await res.json();
          assert.equal(problem.code, code, JSON.stringify(problem));
          for (const [k, v] of Object.entries(extra ?? {})) assert.deepEqual(problem[k], v, k);
        }
        assert.equal((await h.queue.stats()).enqueued ?? 0, before);
        // With an explicit recipient the lead without an address can be mailed.
        const withTo = await send({
          lead_id: noEmail.id,
          template: "intro",
          variables: vars,
          to: "owner@quiet.example",
        });
        assert.equal(withTo.status, 202);
        const task = await h.queue.getTask((await withTo.json()).task_id);
        assert.equal((task?.payload as Json).to, "owner@quiet.example");
      });

      await t.step("malformed bodies → 400 invalid-request naming the field", async () => {
        const cases: [unknown, string[]][] = [
          [{ lead_id: lead.id, template: "intro", variables: vars, to: "not-an-email" }, [
            "body.to",
          ]],
          [{ lead_id: "nope", template: "intro", variables: vars }, ["body.lead_id"]],
          [{ lead_id: lead.id, variables: vars }, ["body.template"]],
          [{ lead_id: lead.id, template: "intro", variables: { sender_name: { x: 1 } } }, [
            "body.variables.sender_name",
          ]],
          [{ lead_id: lead.id, template: "intro", variables: vars, cc: "x@y.example" }, [
            "body.cc",
          ]],
          [[], ["body"]],
        ];
        for (const [json, fields] of cases) {
          const res = await send(json);
          assert.equal(res.status, 400, JSON.stringify(json));
          const problem = await res.json();
          assert.equal(problem.code, "invalid-request");
          assert.deepEqual(
            problem.invalid_fields.map((f: { field: string }) => f.field).sort(),
            fields,
            JSON.stringify(json),
          );
        }
        const text = await h.call("POST", "/v1/outreach/emails", { body: "x", type: "text/csv" });
        assert.equal(text.status, 415);
        await text.body?.cancel();
      });

      await t.step("fuzzed bodies never produce a 5xx", async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(
              fc.anything(),
              fc.record({
                lead_id: fc.constantFrom(lead.id, noEmail.id, "x"),
                template: fc.oneof(
                  fc.constantFrom("intro", "follow_up", "meeting_confirmation"),
                  fc.string(),
                ),
                variables: fc.dictionary(
                  fc.constantFrom(
                    "sender_name",
                    "booking_url",
                    "starts_at",
                    "duration_min",
                    "time_zone",
                    "x",
                  ),
                  fc.oneof(fc.string(), fc.integer(), fc.double(), fc.anything()),
                ),
                to: fc.oneof(fc.emailAddress(), fc.string()),
              }, { requiredKeys: ["lead_id"] }),
            ),
            async (json) => {
              const res = await send(json);
              assert.ok(res.status < 500, `${JSON.stringify(json)} → ${res.status}`);
              await res.body?.cancel();
            },
          ),
          { numRuns: 150 },
        );
      });

      await t.step("the route is in the OpenAPI document", async () => {
        const spec = await (await h.app.request("/openapi.json")).json();
        const op = spec.paths["/v1/outreach/emails"]?.post;
        assert.ok(op);
        assert.ok(op.responses["202"] && op.responses["422"] && op.responses["404"]);
        assert.ok(spec.components.schemas.SendOutreachEmailRequest);
        // The documented example renders as a person would read it.
        const example = spec.components.schemas.SendOutreachEmailRequest.properties.variables
          .example;
        const { text } = renderTemplate("intro", { business_name: "Cove Bakery", ...example }, {
          unsubscribeUrl: "https://example.invalid/u",
        });
        assert.match(text, /I'm Maya from Pleasant Cove\./);
        assert.doesNotMatch(text, /from Pleasant Cove from Pleasant Cove/);
      });
    } finally {
      await h.cleanup();
    }
  },
});
