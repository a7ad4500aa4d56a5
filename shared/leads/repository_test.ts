import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { useTestStack } from "../../testing/stack.ts";
import { poolFor } from "../db/pool.ts";
import { InvalidCursorError, LeadExistsError, LeadNotFoundError } from "./errors.ts";
import { recordLeadEvents } from "./events.ts";
import {
  createLead,
  getLead,
  listLeads,
  MAX_PAGE_SIZE,
  transitionLead,
  updateLead,
} from "./repository.ts";
import { IllegalTransitionError } from "./status.ts";
import { withTransaction } from "./transaction.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { runTag } from "../../testing/namespace.ts";

// The Neon Pool keeps WebSocket ops alive between queries and reports idle
// errors after end() asynchronously (docs/reference/neon-local.md §5): sanitizers off.
const opts = noSanitizers;

async function eventsOf(sql: Pool, leadId: string, type?: string) {
  const { rows } = await sql.query<{ event_type: string; event_data: Record<string, unknown> }>(
    `SELECT event_type, event_data FROM lead_events
      WHERE lead_id = $1 AND ($2::text IS NULL OR event_type = $2) ORDER BY time, id`,
    [leadId, type ?? null],
  );
  return rows;
}

Deno.test({
  name: "the lead repository against Postgres",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const { sql } = stack.makeDeps();
    // A wider pool so that races really run on separate connections.
    const wide = poolFor(stack.settings.database, { max: 8, onError: () => {} });
    // Unique per run: suites share the database.
    const run = runTag();
    const city = (what: string) => `Testville-${run}-${what}`;
    try {
      await t.step("createLead() stores the lead and a lead_created event", async () => {
        const lead = await createLead(sql, {
          name: "Cove Bakery",
          city: city("create"),
          category: "bakery",
          rating: 4.5,
          reviews: 12,
          email: "hello@cove.example",
          source: "test",
          external_id: `ext-${run}-1`,
        }, "test:repo");
        assert.equal(lead.outreach_status, "new");
        assert.equal(lead.rating, 4.5);
        assert.equal(lead.reviews, 12);
        assert.equal(lead.has_website, false);
        assert.equal(lead.lead_score, null);
        assert.ok(lead.created_at instanceof Date);

        const got = await getLead(sql, lead.id);
        assert.equal(got.name, "Cove Bakery");
        assert.deepEqual(got.recent_events.map((e) => [e.event_type, e.source]), [
          ["lead_created", "test:repo"],
        ]);
        assert.deepEqual(got.recent_events[0]!.event_data, {
          source: "test",
          external_id: `ext-${run}-1`,
        });
      });

      await t.step(
        "a duplicate (source, external_id) is LeadExistsError naming the lead",
        async () => {
          const input = { name: "Dup", city: city("dup"), source: "test", external_id: `d-${run}` };
          const first = await createLead(sql, input, "test:repo");
          await assert.rejects(createLead(sql, input, "test:repo"), (err: unknown) => {
            assert.ok(err instanceof LeadExistsError);
            assert.equal(err.code, "lead-exists");
            assert.equal(err.status, 409);
            assert.equal(err.details.lead_id, first.id);
            return true;
          });
          // No external id: never a duplicate.
          await createLead(sql, { name: "Dup", city: city("dup"), source: "test" }, "t");
          await createLead(sql, { name: "Dup", city: city("dup"), source: "test" }, "t");
          assert.equal((await listLeads(sql, { city: city("dup") })).data.length, 3);
        },
      );

      await t.step("getLead() returns the 20 most recent events, newest first", async () => {
        const lead = await createLead(
          sql,
          { name: "Busy", city: city("misc"), source: "test" },
          "t",
        );
        await recordLeadEvents(
          sql,
          Array.from({ length: 25 }, (_, i) => ({
            lead_id: lead.id,
            event_type: "email_sent",
            event_data: { n: i },
            source: "t",
          })),
        );
        const got = await getLead(sql, lead.id);
        assert.equal(got.recent_events.length, 20);
        assert.deepEqual(
          got.recent_events.map((e) => e.event_data.n),
          Array.from({ length: 20 }, (_, i) => 24 - i),
        );
        await assert.rejects(getLead(sql, crypto.randomUUID()), LeadNotFoundError);
        await assert.rejects(getLead(sql, "not-a-uuid"), { code: "lead-not-found" });
      });

      await t.step("listLeads() filters by status, score, city, category and name", async () => {
        const c = city("filters");
        const make = (name: string, extra: Record<string, unknown> = {}) =>
          createLead(sql, { name, city: c, source: "test", ...extra }, "t");
        const a = await make("Alpha Plumbing", { category: "Plumber", lead_score: 80 });
        const b = await make("50% off_Shop", { category: "retail", lead_score: 40 });
        const d = await make("Beta Plumbing", { category: "plumber", lead_score: 20 });
        await transitionLead(sql, d.id, "contacted", "t");
        const names = async (filter: Parameters<typeof listLeads>[1]) =>
          (await listLeads(sql, { city: c, ...filter })).data.map((l) => l.name);

        assert.deepEqual(await names({}), ["Beta Plumbing", "50% off_Shop", "Alpha Plumbing"]);
        assert.deepEqual(await names({ city: c.toUpperCase() }), await names({}));
        assert.deepEqual(await names({ status: "contacted" }), ["Beta Plumbing"]);
        assert.deepEqual(await names({ status: ["new", "contacted"] }), await names({}));
        assert.deepEqual(await names({ min_score: 40 }), ["50% off_Shop", "Alpha Plumbing"]);
        assert.deepEqual(await names({ category: "PLUMBER" }), ["Beta Plumbing", "Alpha Plumbing"]);
        assert.deepEqual(await names({ q: "plumb" }), ["Beta Plumbing", "Alpha Plumbing"]);
        // % and _ match literally, not as wildcards.
        assert.deepEqual(await names({ q: "%" }), ["50% off_Shop"]);
        assert.deepEqual(await names({ q: "_" }), ["50% off_Shop"]);
        assert.deepEqual(await names({ q: "a_p" }), []);
        assert.deepEqual(await names({ q: "\\" }), []);
        assert.deepEqual((await listLeads(sql, { city: c, limit: 2 })).data.map((l) => l.id), [
          d.id,
          b.id,
        ]);
        assert.ok(a.id);
        await assert.rejects(listLeads(sql, { limit: MAX_PAGE_SIZE + 1 }), RangeError);
        await assert.rejects(listLeads(sql, { cursor: "bm9wZQ" }), InvalidCursorError);
      });

      await t.step(
        "listLeads() sorts by created_at, updated_at and lead_score both ways, paging by keyset",
        async () => {
          const c = city("sorts");
          // Equal scores and a never-scored lead: the id tie-break and the -1 of NULL.
          const scores = [50, null, 50, 10, 90, 50, null];
          const made = [];
          for (const [i, lead_score] of scores.entries()) {
            made.push(
              await createLead(sql, { name: `Sort ${i}`, city: c, source: "t", lead_score }, "t"),
            );
          }
          // updated_at in another order than created_at.
          await updateLead(sql, made[2]!.id, { reviews: 3 }, "t");
          await updateLead(sql, made[0]!.id, { reviews: 3 }, "t");
          const { rows } = await sql.query<
            { id: string; created_at: Date; updated_at: Date; s: number }
          >(
            `SELECT id, created_at, updated_at, COALESCE(lead_score, -1) AS s FROM businesses WHERE city = $1`,
            [c],
          );
          const expected = (
            sort: "created_at" | "updated_at" | "lead_score",
            order: "asc" | "desc",
          ) => {
            const key = (r: typeof rows[number]) =>
              sort === "lead_score"
                ? r.s
                : (sort === "created_at" ? r.created_at : r.updated_at).getTime();
            const sorted = [...rows].sort((x, y) => key(x) - key(y) || (x.id < y.id ? -1 : 1));
            return (order === "asc" ? sorted : sorted.reverse()).map((r) => r.id);
          };
          for (const sort of ["created_at", "updated_at", "lead_score"] as const) {
            for (const order of ["asc", "desc"] as const) {
              const seen: string[] = [];
              let cursor: string | undefined;
              do {
                const page = await listLeads(sql, { city: c, sort, order, limit: 2, cursor });
                seen.push(...page.data.map((l) => l.id));
                cursor = page.next_cursor ?? undefined;
                if (cursor !== undefined) {
                  // A cursor belongs to its sort and order.
                  const other = order === "asc" ? "desc" : "asc";
                  await assert.rejects(
                    listLeads(sql, { city: c, sort, order: other, cursor }),
                    InvalidCursorError,
                  );
                }
              } while (cursor !== undefined);
              assert.deepEqual(seen, expected(sort, order), `${sort} ${order}`);
            }
          }
          // Never scored: last when descending, first when ascending.
          const desc = (await listLeads(sql, { city: c, sort: "lead_score" })).data;
          assert.deepEqual(desc.map((l) => l.lead_score), [90, 50, 50, 50, 10, null, null]);
          // The default order is newest first.
          assert.deepEqual(
            (await listLeads(sql, { city: c })).data.map((l) => l.id),
            expected("created_at", "desc"),
          );
        },
      );

      await t.step(
        "listLeads() filters by source, website, email and time ranges; q ignores accents",
        async () => {
          const c = city("more-filters");
          const make = (name: string, extra: Record<string, unknown> = {}) =>
            createLead(sql, { name, city: c, source: "places", ...extra }, "t");
          const cafe = await make("Café Crème", {
            has_website: true,
            email: "bonjour@cafe.example",
          });
          const plain = await make("Plain Cafe", { source: "csv" });
          const zurich = await make("ZÜRICH Ångström Ølbar", { email: "hi@z.example" });
          // Creation instants a day apart: the filters take milliseconds, rows have microseconds.
          await sql.query(
            `UPDATE businesses SET created_at = timestamptz '2020-01-01T00:00:00Z' + (
               CASE id WHEN $2 THEN 0 WHEN $3 THEN 1 ELSE 2 END) * interval '1 day'
              WHERE city = $1`,
            [c, cafe.id, plain.id],
          );
          Object.assign(plain, { created_at: new Date("2020-01-02T00:00:00Z") });
          Object.assign(zurich, { created_at: new Date("2020-01-03T00:00:00Z") });
          // The update below then lands in a later millisecond than that UPDATE's updated_at.
          await new Promise((r) => setTimeout(r, 10));
          const names = async (filter: Parameters<typeof listLeads>[1]) =>
            (await listLeads(sql, { city: c, sort: "created_at", order: "asc", ...filter })).data
              .map((l) => l.name);
          assert.deepEqual(await names({ q: "cafe" }), ["Café Crème", "Plain Cafe"]);
          assert.deepEqual(await names({ q: "CAFÉ" }), ["Café Crème", "Plain Cafe"]);
          assert.deepEqual(await names({ q: "creme" }), ["Café Crème"]);
          assert.deepEqual(await names({ q: "zurich angstrom" }), ["ZÜRICH Ångström Ølbar"]);
          assert.deepEqual(await names({ source: "csv" }), ["Plain Cafe"]);
          assert.deepEqual(await names({ source: "CSV" }), []);
          assert.deepEqual(await names({ has_website: true }), ["Café Crème"]);
          assert.deepEqual(await names({ has_website: false }), [
            "Plain Cafe",
            "ZÜRICH Ångström Ølbar",
          ]);
          assert.deepEqual(await names({ has_email: true }), [
            "Café Crème",
            "ZÜRICH Ångström Ølbar",
          ]);
          assert.deepEqual(await names({ has_email: false }), ["Plain Cafe"]);
          // created_after is inclusive, created_before exclusive.
          assert.deepEqual(await names({ created_after: plain.created_at }), [
            "Plain Cafe",
            "ZÜRICH Ångström Ølbar",
          ]);
          assert.deepEqual(await names({ created_before: plain.created_at }), ["Café Crème"]);
          assert.deepEqual(
            await names({ created_after: plain.created_at, created_before: zurich.created_at }),
            ["Plain Cafe"],
          );
          const touched = await updateLead(sql, cafe.id, { reviews: 9 }, "t");
          assert.deepEqual(await names({ updated_after: touched.updated_at }), ["Café Crème"]);
          assert.deepEqual(await names({ updated_before: touched.updated_at }), [
            "Plain Cafe",
            "ZÜRICH Ångström Ølbar",
          ]);
        },
      );

      await t.step("updateLead() changes fields and status and records both", async () => {
        const lead = await createLead(
          sql,
          { name: "Fixme", city: city("misc"), source: "test" },
          "t",
        );
        const updated = await updateLead(sql, lead.id, {
          name: "Fixed",
          lead_score: 77.5,
          email: null,
          outreach_status: "contacted",
        }, "api:alice");
        assert.equal(updated.name, "Fixed");
        assert.equal(updated.lead_score, 77.5);
        assert.equal(updated.outreach_status, "contacted");
        assert.ok(updated.updated_at >= lead.updated_at);
        const events = await eventsOf(sql, lead.id);
        assert.deepEqual(events.map((e) => e.event_type), [
          "lead_created",
          "status_changed",
          "lead_updated",
        ]);
        assert.deepEqual(events[1]!.event_data, { from: "new", to: "contacted" });
        assert.deepEqual(events[2]!.event_data, { fields: ["name", "email", "lead_score"] });

        // Illegal: nothing of the patch is applied.
        await assert.rejects(
          updateLead(sql, lead.id, { name: "Nope", outreach_status: "client" }, "t"),
          (err: unknown) => {
            assert.ok(err instanceof IllegalTransitionError);
            assert.deepEqual(err.details.allowed, ["responded", "not_interested"]);
            return true;
          },
        );
        assert.equal((await getLead(sql, lead.id)).name, "Fixed");
        // Same state: no event.
        await updateLead(sql, lead.id, { outreach_status: "contacted" }, "t");
        assert.equal((await eventsOf(sql, lead.id, "status_changed")).length, 1);
        await assert.rejects(updateLead(sql, crypto.randomUUID(), { name: "x" }, "t"), {
          code: "lead-not-found",
        });
      });

      await t.step(
        "transitionLead() with ifReached: noop walks forward or does nothing",
        async () => {
          const lead = await createLead(sql, {
            name: "Worker lead",
            city: city("misc"),
            source: "test",
          }, "t");
          await transitionLead(sql, lead.id, "contacted", "worker:send_email");
          const booked = await transitionLead(sql, lead.id, "meeting_scheduled", "worker:book", {
            ifReached: "noop",
            data: { appointment_id: "a1" },
          });
          assert.equal(booked.changed, true);
          assert.equal(booked.from, "contacted");
          assert.equal(booked.lead.outreach_status, "meeting_scheduled");
          const again = await transitionLead(sql, lead.id, "contacted", "worker:send_email", {
            ifReached: "noop",
          });
          assert.equal(again.changed, false);
          await assert.rejects(
            transitionLead(sql, lead.id, "contacted", "t"),
            IllegalTransitionError,
          );
          assert.deepEqual(
            (await eventsOf(sql, lead.id, "status_changed")).map((e) => e.event_data),
            [
              { from: "new", to: "contacted" },
              { from: "contacted", to: "responded" },
              { appointment_id: "a1", from: "responded", to: "meeting_scheduled" },
            ],
          );
        },
      );

      await t.step(
        "transitionLead() joins the caller's transaction and rolls back with it",
        async () => {
          const lead = await createLead(sql, {
            name: "Tx lead",
            city: city("misc"),
            source: "test",
          }, "t");
          await assert.rejects(
            withTransaction(sql, async (client) => {
              await transitionLead(client, lead.id, "contacted", "t");
              throw new Error("boom");
            }),
            /boom/,
          );
          assert.equal((await getLead(sql, lead.id)).outreach_status, "new");
          assert.equal((await eventsOf(sql, lead.id, "status_changed")).length, 0);
          await withTransaction(sql, (client) => transitionLead(client, lead.id, "contacted", "t"));
          assert.equal((await getLead(sql, lead.id)).outreach_status, "contacted");
        },
      );

      await t.step("concurrent transitions from the same state: exactly one wins", async () => {
        for (let round = 0; round < 3; round++) {
          const lead = await createLead(wide, {
            name: `Race ${round}`,
            city: city("misc"),
            source: "test",
          }, "t");
          const results = await Promise.all(
            Array.from({ length: 6 }, () => transitionLead(wide, lead.id, "contacted", "t")),
          );
          assert.equal(results.filter((r) => r.changed).length, 1);
          assert.equal((await eventsOf(sql, lead.id, "status_changed")).length, 1);
          // Two PATCHes racing contacted → responded: one moves it, the other is a no-op.
          await Promise.all([
            updateLead(wide, lead.id, { outreach_status: "responded" }, "a"),
            updateLead(wide, lead.id, { outreach_status: "responded" }, "b"),
          ]);
          assert.deepEqual(
            (await eventsOf(sql, lead.id, "status_changed")).map((e) => e.event_data.to),
            ["contacted", "responded"],
          );
        }
      });

      await t.step("paging while others insert: every original lead exactly once", async () => {
        const c = city("pages");
        // 60 rows with one shared created_at (order decided by id), 30 of them
        // microseconds apart (a millisecond cursor would lose them), 30 more
        // through createLead.
        const { rows: bulk } = await wide.query<{ id: string }>(
          `INSERT INTO businesses (name, city, source, created_at)
           SELECT 'Page ' || g, $1, 'test',
                  CASE WHEN g <= 30 THEN now() ELSE now() + (g * interval '1 microsecond') END
             FROM generate_series(1, 90) AS g
           RETURNING id`,
          [c],
        );
        const originals = new Set(bulk.map((r) => r.id));
        for (let i = 0; i < 30; i++) {
          originals.add(
            (await createLead(wide, { name: `Page c${i}`, city: c, source: "test" }, "t")).id,
          );
        }
        assert.equal(originals.size, 120);

        // Ten inserts run alongside each of the first five page reads.
        const insertBatch = async (batch: number) => {
          for (let i = batch * 10; i < Math.min(50, batch * 10 + 10); i++) {
            if (i % 5 === 0) {
              // A late commit with an old timestamp, tied with already-paged rows.
              await wide.query(
                `INSERT INTO businesses (name, city, source, created_at)
                 SELECT 'Late ' || $2::text, $1, 'test', min(created_at)
                   FROM businesses WHERE city = $1`,
                [c, i],
              );
            } else {
              await createLead(wide, { name: `New ${i}`, city: c, source: "test" }, "t");
            }
          }
        };
        const seen: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const [page] = await Promise.all([
            listLeads(sql, { city: c, limit: 25, cursor }),
            insertBatch(pages),
          ]);
          assert.ok(page.data.length <= 25);
          seen.push(...page.data.map((l) => l.id));
          cursor = page.next_cursor ?? undefined;
          pages++;
        } while (cursor !== undefined);

        assert.equal(new Set(seen).size, seen.length, "no lead twice");
        for (const id of originals) {
          assert.equal(seen.filter((s) => s === id).length, 1, `original ${id} exactly once`);
        }
        assert.ok(pages >= 5);
        assert.equal((await listLeads(sql, { city: c, limit: 200 })).data.length, 170);
      });
    } finally {
      await wide.query(
        `WITH gone AS (DELETE FROM businesses WHERE city LIKE $1 RETURNING id)
         DELETE FROM lead_events WHERE lead_id IN (SELECT id FROM gone)`,
        [`Testville-${run}-%`],
      ).catch(() => {});
      await wide.end();
    }
  },
});
