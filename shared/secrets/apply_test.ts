import assert from "node:assert/strict";
import { parseConfig } from "../config/mod.ts";
import { createLogger } from "../log.ts";
import { poolFor } from "../db/pool.ts";
import { secretApplier } from "./apply.ts";

Deno.test("secretApplier() updates the live config (and the pool's URL) per rotated secret", async () => {
  const config = parseConfig({
    UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
    UPSTASH_REDIS_REST_TOKEN: "t",
    DATABASE_URL: "postgresql://u:p@127.0.0.1:1/db",
  });
  const lines: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
  const sql = poolFor(config.database); // no connection is opened
  try {
    const apply = secretApplier(config, sql, log);
    const keys = [{ kid: "k2", secret: "x".repeat(32) }];
    apply("JWT_HS256_KEYS", keys);
    assert.equal(config.auth.hs256Keys, keys);
    apply("JWT_HS256_KEYS", []);
    assert.equal(config.auth.hs256Keys, keys, "an empty keyring is refused");
    apply("UNSUBSCRIBE_SECRET", ["new-secret-0123456789", "old-secret-0123456789"]);
    assert.equal(config.email.unsubscribeSecret, "new-secret-0123456789");
    assert.deepEqual(config.email.unsubscribeVerifySecrets.length, 2);
    apply("EMAIL_API_KEY", "ek");
    apply("PLACES_API_KEY", "pk");
    assert.equal(config.email.apiKey, "ek");
    assert.equal(config.places.apiKey, "pk");
    apply("DATABASE_URL", "postgresql://u:rotated@127.0.0.1:1/db");
    assert.equal(config.database.url, "postgresql://u:rotated@127.0.0.1:1/db");
    assert.equal(
      (sql as unknown as { options: { connectionString: string } }).options.connectionString,
      "postgresql://u:rotated@127.0.0.1:1/db",
    );
    apply("UPSTASH_REDIS_REST_TOKEN", "new");
    assert.equal(config.redis.token, "t");
    assert.ok(lines.some((l) => l.includes("applies after a restart")));
    assert.ok(!lines.some((l) => l.includes("u:rotated") || l.includes('"new"')));
  } finally {
    await sql.end();
  }
});
