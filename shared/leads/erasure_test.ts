import assert from "node:assert/strict";
import { type EventsClient, isCompressedChunkRefusal, redactLeadEvents } from "./erasure.ts";

// TimescaleDB 2.10 cannot run here (no package for this Debian), so its
// refusal is played by a client that answers the first UPDATE of
// lead_events the way TimescaleDB does (SQLSTATE 0A000). The statements on
// plain PostgreSQL are covered end to end by edge/routes/lead_erasure_test.ts.
const ID = "5f0c4b1e-0000-4000-8000-000000000001";

function timescale210(options: { refuse: boolean; otherError?: Error }) {
  const statements: string[] = [];
  let refused = false;
  const client = {
    query(text: string) {
      statements.push(text.trim().split(/\s+/).slice(0, 2).join(" "));
      if (text.startsWith("UPDATE lead_events")) {
        if (options.otherError) return Promise.reject(options.otherError);
        if (options.refuse && !refused) {
          refused = true;
          return Promise.reject(Object.assign(
            new Error(
              'cannot update/delete rows from chunk "_hyper_1_3_chunk" as it is compressed',
            ),
            { code: "0A000" },
          ));
        }
        return Promise.resolve({ rowCount: 4, rows: [] });
      }
      return Promise.resolve({ rowCount: 0, rows: [] });
    },
  } as unknown as EventsClient;
  return { client, statements };
}

Deno.test("redactLeadEvents on uncompressed events: one update inside a savepoint", async () => {
  const { client, statements } = timescale210({ refuse: false });
  assert.equal(await redactLeadEvents(client, ID), 4);
  assert.deepEqual(statements, [
    "SAVEPOINT redact_lead_events",
    "UPDATE lead_events",
    "RELEASE SAVEPOINT",
  ]);
});

Deno.test("redactLeadEvents on compressed chunks (TimescaleDB < 2.11): decompresses them and updates again", async () => {
  const { client, statements } = timescale210({ refuse: true });
  assert.equal(await redactLeadEvents(client, ID), 4);
  assert.deepEqual(statements, [
    "SAVEPOINT redact_lead_events",
    "UPDATE lead_events",
    "ROLLBACK TO",
    "SELECT decompress_chunk(",
    "UPDATE lead_events",
  ]);
});

Deno.test("redactLeadEvents lets every other failure through (the erasure rolls back)", async () => {
  const broken = Object.assign(new Error("connection terminated"), { code: "57P01" });
  const { client, statements } = timescale210({ refuse: false, otherError: broken });
  await assert.rejects(redactLeadEvents(client, ID), (err) => err === broken);
  assert.ok(!statements.some((s) => s.startsWith("SELECT decompress_chunk")));
});

Deno.test("isCompressedChunkRefusal: only feature_not_supported about compressed chunks", () => {
  assert.equal(
    isCompressedChunkRefusal({
      code: "0A000",
      message: "cannot update/delete rows from chunk as it is compressed",
    }),
    true,
  );
  assert.equal(isCompressedChunkRefusal({ code: "0A000", message: "something else" }), false);
  assert.equal(isCompressedChunkRefusal({ code: "23505", message: "compressed" }), false);
  assert.equal(isCompressedChunkRefusal(null), false);
});
