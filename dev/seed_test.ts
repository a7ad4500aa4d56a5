import assert from "node:assert/strict";
import type { Pool } from "@neondatabase/serverless";
import { denoRunArgs } from "./app_permissions.ts";
import { readEnvironment } from "../shared/config/mod.ts";
import { poolFor } from "../shared/db/pool.ts";
import { deleteSeeded, parseSeedArgs, seedDatabase, SeedUsageError } from "./seed.ts";
import { generateLeads } from "./seed_data.ts";
import { useTestStack } from "../testing/stack.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { runTag } from "../testing/namespace.ts";

// The Neon Pool keeps WebSocket ops alive between queries and reports idle
// errors after end() asynchronously (docs/reference/neon-local.md §5), so the database test
// runs with the op and resource sanitizers off.
const opts = noSanitizers;

const NOW = Date.UTC(2026, 5, 1);
const ROOT = new URL("../", import.meta.url).pathname;

/** Row counts of one source, through the businesses it owns. */
async function countsOf(pool: Pool, source: string) {
  const { rows } = await pool.query(
    `WITH b AS (SELECT id FROM businesses WHERE source = $1)
     SELECT (SELECT count(*) FROM b)::int AS businesses,
            (SELECT count(*) FROM lead_events WHERE lead_id IN (SELECT id FROM b))::int
              AS lead_events,
            (SELECT count(*) FROM email_messages WHERE business_id IN (SELECT id FROM b))::int
              AS email_messages,
            (SELECT count(*) FROM appointments WHERE business_id IN (SELECT id FROM b))::int
              AS appointments,
            (SELECT count(*) FROM email_suppressions
               WHERE left(reason, length($1) + 1) = $1 || ':')::int
              AS email_suppressions`,
    [source],
  );
  return rows[0];
}

async function snapshot(pool: Pool, source: string): Promise<string[]> {
  const { rows } = await pool.query<{ r: string }>(
    `SELECT concat_ws('|', id, external_id, name, outreach_status, rating, lead_score,
              last_contacted, created_at) AS r
       FROM businesses WHERE source = $1 ORDER BY external_id`,
    [source],
  );
  return rows.map((row) => row.r);
}

/** Runs dev/seed.ts as `deno task seed` would, with exactly `env` (plus what deno needs). */
async function seedCli(args: string[], env: Record<string, string>) {
  const own = readEnvironment();
  const keep = ["PATH", "HOME", "DENO_DIR", "XDG_CACHE_HOME", "TMPDIR"];
  const base = Object.fromEntries(keep.filter((k) => own[k]).map((k) => [k, own[k]!]));
  const out = await new Deno.Command(Deno.execPath(), {
    args: denoRunArgs("dev/seed.ts", [], args),
    cwd: ROOT,
    env: { ...base, ...env },
    clearEnv: true,
    stdin: "null",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b).trim();
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "seedDatabase()",
  ...opts,
  async fn(t) {
    await using stack = await useTestStack();
    const pool = poolFor(stack.settings.database, { max: 2, onError: () => {} });
    // Other suites share this database: every source here is private to this run.
    const tag = runTag();
    const source = `seed_test_${tag}`;
    const other = `seed_test_${tag}_other`;
    const cli = `seed_test_${tag}_cli`;
    const foreignAddress = `${tag}@foreign.example`;
    try {
      const expected = generateLeads(200, { seed: 7, now: NOW, source });
      const sum = (f: (l: (typeof expected)[number]) => number) =>
        expected.reduce((s, l) => s + f(l), 0);

      await t.step("writes the generated set: 200 leads and their history", async () => {
        const summary = await seedDatabase(pool, { seed: 7, leads: 200, now: NOW, source });
        assert.deepEqual(
          { ...summary.inserted, email_suppressions: 0 },
          {
            businesses: 200,
            lead_events: sum((l) => l.events.length),
            email_messages: sum((l) => l.emails.length),
            appointments: sum((l) => (l.appointment ? 1 : 0)),
            email_suppressions: 0,
          },
        );
        assert.ok(summary.inserted.email_suppressions <= sum((l) => (l.suppression ? 1 : 0)));
        assert.equal(summary.existing, 0);
        assert.deepEqual(await countsOf(pool, source), summary.inserted);
      });

      await t.step("the rows agree with each other in the database", async () => {
        const { rows } = await pool.query(
          `WITH b AS (SELECT * FROM businesses WHERE source = $1)
           SELECT
             (SELECT count(*) FROM appointments a JOIN b ON b.id = a.business_id
               WHERE b.outreach_status NOT IN ('meeting_scheduled', 'client', 'not_interested'))::int
               AS stray_appointments,
             (SELECT count(*) FROM email_messages m JOIN b ON b.id = m.business_id
               WHERE m.status <> 'sent' OR m.provider <> 'seed' OR m.to_address <> b.email
                  OR m.send_day <> (m.sent_at AT TIME ZONE 'UTC')::date)::int AS bad_emails,
             (SELECT count(*) FROM b WHERE last_contacted IS DISTINCT FROM
               (SELECT max(sent_at) FROM email_messages m WHERE m.business_id = b.id))::int
               AS bad_last_contacted,
             (SELECT count(*) FROM b WHERE outreach_status IS DISTINCT FROM coalesce(
               (SELECT e.event_data->>'to' FROM lead_events e WHERE e.lead_id = b.id
                  AND e.event_type = 'status_changed' ORDER BY e.time DESC LIMIT 1), 'new'))::int
               AS bad_status,
             (SELECT count(*) FROM lead_events e JOIN b ON b.id = e.lead_id
               WHERE e.source <> b.source)::int AS foreign_events`,
          [source],
        );
        assert.deepEqual(rows[0], {
          stray_appointments: 0,
          bad_emails: 0,
          bad_last_contacted: 0,
          bad_status: 0,
          foreign_events: 0,
        });
      });

      await t.step("a rerun without --reset inserts nothing", async () => {
        const before = await snapshot(pool, source);
        const summary = await seedDatabase(pool, { seed: 7, leads: 200, now: NOW, source });
        assert.deepEqual(summary.inserted, {
          businesses: 0,
          lead_events: 0,
          email_messages: 0,
          appointments: 0,
          email_suppressions: 0,
        });
        assert.equal(summary.existing, 200);
        assert.deepEqual(await snapshot(pool, source), before);
      });

      await t.step(
        "--reset deletes only this source's rows and rewrites the same ones",
        async () => {
          await seedDatabase(pool, { seed: 8, leads: 30, now: NOW, source: other });
          await pool.query(
            "INSERT INTO email_suppressions (address, reason) VALUES ($1, 'unsubscribed')",
            [foreignAddress],
          );
          const otherBefore = await countsOf(pool, other);
          const before = await snapshot(pool, source);
          const counts = await countsOf(pool, source);
          const summary = await seedDatabase(pool, {
            seed: 7,
            leads: 200,
            now: NOW,
            source,
            reset: true,
            batchSize: 37, // several batches per table, with a ragged last one
          });
          assert.deepEqual(summary.deleted, counts);
          assert.deepEqual(summary.inserted, counts);
          assert.deepEqual(await snapshot(pool, source), before);
          assert.deepEqual(await countsOf(pool, other), otherBefore);
          const { rows } = await pool.query(
            "SELECT count(*)::int AS n FROM email_suppressions WHERE address = $1",
            [foreignAddress],
          );
          assert.equal(rows[0].n, 1);
        },
      );

      await t.step(
        "the CLI prints one JSON line, and one error line without a database",
        async () => {
          const ok = await seedCli(
            ["--seed", "5", "--leads", "20", "--source", cli, "--now", "2026-06-01"],
            stack.env(),
          );
          assert.equal(ok.code, 0, ok.stderr);
          assert.equal(ok.stdout.split("\n").length, 1);
          const summary = JSON.parse(ok.stdout);
          assert.equal(summary.inserted.businesses, 20);
          assert.equal(summary.now, "2026-06-01T00:00:00.000Z");
          assert.ok(summary.elapsed_ms >= 0);

          const missing = await seedCli(["--leads", "20"], {});
          assert.equal(missing.code, 2);
          assert.equal(missing.stderr.split("\n").length, 1);
          assert.match(missing.stderr, /^Cannot seed: DATABASE_URL is not set/);
        },
      );
    } finally {
      for (const s of [source, other, cli]) await deleteSeeded(pool, s).catch(() => {});
      await pool.query("DELETE FROM email_suppressions WHERE address = $1", [foreignAddress])
        .catch(() => {});
      await pool.end().catch(() => {});
    }
  },
});

Deno.test({
  name: "parseSeedArgs() reads the flags and refuses sources a reset could hurt",
  // Pure, but runs after the database tests of this file, whose Neon Pool
  // closes its WebSockets asynchronously (docs/reference/neon-local.md §5).
  ...noSanitizers,
}, () => {
  const now = () => Date.UTC(2026, 5, 1, 15, 30);
  assert.deepEqual(parseSeedArgs([], { now }), {
    seed: 1,
    leads: 5000,
    reset: false,
    source: "seed",
    now: Date.UTC(2026, 5, 1),
    help: false,
  });
  const parsed = parseSeedArgs(["--seed", "9", "--leads", "200", "--reset", "--source", "seed_x"]);
  assert.deepEqual([parsed.seed, parsed.leads, parsed.reset, parsed.source], [
    9,
    200,
    true,
    "seed_x",
  ]);
  for (
    const args of [
      ["--source", "places"],
      ["--source", "seedy"],
      ["--leads", "0"],
      ["--leads", "12abc"],
      ["--seed", "-1"],
      ["--now", "yesterday"],
      ["--unknown"],
    ]
  ) {
    assert.throws(() => parseSeedArgs(args), SeedUsageError, args.join(" "));
  }
});
