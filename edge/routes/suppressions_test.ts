import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { routeHarness } from "../../testing/route_harness.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
const opts = noSanitizers;

type Json = Record<string, unknown>;

Deno.test({
  name: "suppression list management: admins list, add and remove with a reason, audited",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const h = await routeHarness(stack);
    const sql = h.deps.sql;
    const admin = await h.token(`u-admin-${h.run}`, ["admin"]);
    const actor = `api:u-admin-${h.run}`;
    const addr = (n: string) => `${n}-${h.run}@suppress.example`;
    const asAdmin = (method: string, path: string, json?: unknown) =>
      h.call(method, path, { auth: admin, ...(json === undefined ? {} : { json }) });
    const lead = await h.lead({ name: `Quay Books ${h.run}`, email: addr("owner") });

    try {
      await t.step("only admins: every other role and every service gets 403", async () => {
        for (const auth of [h.tokens.minerva, h.tokens.operator, h.tokens.viewer]) {
          for (
            const [method, path] of [
              ["GET", "/v1/admin/suppressions"],
              ["GET", "/v1/admin/suppressions/changes"],
              ["POST", "/v1/admin/suppressions"],
              ["POST", "/v1/admin/suppressions/remove"],
            ] as const
          ) {
            const res = await h.call(method, path, {
              auth,
              ...(method === "POST" ? { json: { address: addr("x"), reason: "r" } } : {}),
            });
            assert.equal(res.status, 403, `${method} ${path}`);
            const body = await res.json();
            assert.equal(body.code, "forbidden");
          }
        }
      });

      await t.step(
        "add: 201 with who added it; again: 200 unchanged; sends are refused",
        async () => {
          const res = await asAdmin("POST", "/v1/admin/suppressions", {
            address: `  ${addr("OWNER").replace("OWNER", "Owner")} `,
            reason: "Asked by phone not to be emailed",
          });
          assert.equal(res.status, 201, await res.clone().text());
          const added = await res.json();
          assert.equal(added.address, addr("owner"));
          assert.equal(added.reason, "Asked by phone not to be emailed");
          assert.equal(added.added_by, actor);
          const again = await asAdmin("POST", "/v1/admin/suppressions", {
            address: addr("owner"),
            reason: "Second thoughts",
          });
          assert.equal(again.status, 200);
          assert.equal((await again.json()).reason, "Asked by phone not to be emailed");
          const send = await h.call("POST", "/v1/outreach/emails", {
            json: { lead_id: lead.id, template: "intro", variables: { sender_name: "Maya" } },
          });
          assert.equal(send.status, 422);
          assert.equal((await send.json()).code, "recipient-suppressed");
        },
      );

      await t.step("list: newest first in keyset pages; `address` finds one", async () => {
        // The recipient's own unsubscribe (the link) leaves added_by null.
        await sql.query(
          "INSERT INTO email_suppressions (address, reason) VALUES ($1, 'unsubscribed')",
          [addr("reader")],
        );
        await asAdmin("POST", "/v1/admin/suppressions", {
          address: addr("third"),
          reason: "Bounced",
        });
        const one = await asAdmin("GET", `/v1/admin/suppressions?address=${addr("reader")}`);
        const found = await one.json();
        assert.deepEqual(found.data.map((s: Json) => [s.address, s.added_by]), [[
          addr("reader"),
          null,
        ]]);
        assert.equal(found.next_cursor, null);
        // Walk the whole list two at a time until ours have all been seen.
        const seen: string[] = [];
        let cursor: string | null = null;
        let previous = "9999";
        do {
          const res = await asAdmin(
            "GET",
            `/v1/admin/suppressions?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
          );
          assert.equal(res.status, 200);
          const page = await res.json();
          assert.ok(page.data.length <= 2);
          for (const s of page.data as Json[]) {
            assert.ok(String(s.created_at) <= previous, "newest first");
            previous = String(s.created_at);
            seen.push(String(s.address));
          }
          cursor = page.next_cursor;
        } while (cursor !== null && !seen.includes(addr("owner")));
        assert.deepEqual(
          seen.filter((a) => a.endsWith(`-${h.run}@suppress.example`)),
          [addr("third"), addr("reader"), addr("owner")],
        );
      });

      await t.step(
        "remove: the reason is required; removed with an audit entry; then 404",
        async () => {
          const noReason = await asAdmin("POST", "/v1/admin/suppressions/remove", {
            address: addr("owner"),
          });
          assert.equal(noReason.status, 400);
          assert.equal((await noReason.json()).invalid_fields[0].field, "body.reason");
          const res = await asAdmin("POST", "/v1/admin/suppressions/remove", {
            address: addr("owner").toUpperCase(),
            reason: "Owner asked to hear from us again",
          });
          assert.equal(res.status, 200, await res.clone().text());
          const out = await res.json();
          assert.equal(out.removed.address, addr("owner"));
          assert.equal(out.removed.added_by, actor);
          assert.equal(out.change.action, "removed");
          assert.equal(out.change.actor, actor);
          assert.equal(out.change.reason, "Owner asked to hear from us again");
          const list =
            await (await asAdmin("GET", `/v1/admin/suppressions?address=${addr("owner")}`))
              .json();
          assert.deepEqual(list.data, []);
          const again = await asAdmin("POST", "/v1/admin/suppressions/remove", {
            address: addr("owner"),
            reason: "again",
          });
          assert.equal(again.status, 404);
          assert.equal((await again.json()).code, "suppression-not-found");
          // Mail may reach the address again.
          const send = await h.call("POST", "/v1/outreach/emails", {
            json: { lead_id: lead.id, template: "intro", variables: { sender_name: "Maya" } },
          });
          assert.equal(send.status, 202);
          await send.body?.cancel();
        },
      );

      await t.step(
        "the audit log keeps every change, newest first, after the removal",
        async () => {
          const res = await asAdmin(
            "GET",
            `/v1/admin/suppressions/changes?address=${addr("owner")}`,
          );
          assert.equal(res.status, 200);
          const log = await res.json();
          assert.deepEqual(
            log.data.map((c: Json) => [c.action, c.reason, c.actor]),
            [
              ["removed", "Owner asked to hear from us again", actor],
              ["added", "Asked by phone not to be emailed", actor],
            ],
          );
          const first = await (await asAdmin(
            "GET",
            `/v1/admin/suppressions/changes?address=${addr("owner")}&limit=1`,
          )).json();
          const second = await (await asAdmin(
            "GET",
            `/v1/admin/suppressions/changes?address=${
              addr("owner")
            }&limit=1&cursor=${first.next_cursor}`,
          )).json();
          assert.deepEqual(
            [...first.data, ...second.data].map((c: Json) => c.id),
            log.data.map((c: Json) => c.id),
          );
        },
      );

      await t.step("bad input is 400 naming the field; the routes are documented", async () => {
        for (
          const [path, json, field] of [
            ["/v1/admin/suppressions", { address: "not-an-address", reason: "x" }, "body.address"],
            ["/v1/admin/suppressions", { address: addr("y"), reason: "  " }, "body.reason"],
            ["/v1/admin/suppressions", { address: addr("y"), reason: "x", by: "me" }, "body.by"],
          ] as const
        ) {
          const res = await asAdmin("POST", path, json);
          assert.equal(res.status, 400, JSON.stringify(json));
          const body = await res.json();
          assert.ok(body.invalid_fields.some((f: Json) => f.field === field), JSON.stringify(body));
        }
        const badCursor = await asAdmin("GET", "/v1/admin/suppressions?cursor=xyz");
        assert.equal(badCursor.status, 400);
        await badCursor.body?.cancel();
        const spec = await (await h.app.request("/openapi.json")).json();
        assert.ok(spec.paths["/v1/admin/suppressions"]?.get?.description);
        assert.ok(spec.paths["/v1/admin/suppressions"]?.post?.responses["201"]);
        assert.ok(spec.paths["/v1/admin/suppressions/remove"]?.post?.responses["404"]);
        assert.ok(spec.paths["/v1/admin/suppressions/changes"]?.get);
      });
    } finally {
      const mine = ["owner", "reader", "third", "x", "y"].map(addr);
      await sql.query("DELETE FROM email_suppressions WHERE address = ANY($1::text[])", [mine]);
      await sql.query("DELETE FROM email_suppression_changes WHERE address = ANY($1::text[])", [
        mine,
      ]);
      await h.cleanup();
    }
  },
});
