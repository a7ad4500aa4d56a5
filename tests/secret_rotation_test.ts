/**
 * Secrets rotate without a restart: the real edge process reads its HMAC keys
 * from a mounted-style JWT_HS256_KEYS_FILE; rewriting the file (atomically,
 * as the kubelet swaps a projected volume) makes a token of the new kid
 * verify within a few reload rounds, a request in flight across the rotation
 * completes, and a kid removed from the file stops verifying.
 */
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { useTestStack } from "../testing/stack.ts";
import { startEdge } from "../testing/process.ts";
import { waitUntil } from "../testing/wait.ts";

const K1 = "k1:first-rotation-secret-0123456789abcdef";
const K2 = "k2:second-rotation-secret-0123456789abcdef";

function token(kidSecret: string): Promise<string> {
  const [kid, secret] = [kidSecret.slice(0, 2), kidSecret.slice(3)];
  return new SignJWT({ roles: ["operator"] })
    .setProtectedHeader({ alg: "HS256", kid })
    .setSubject("rotation-user")
    .setIssuer("pleasant-cove")
    .setAudience("pleasant-cove-api")
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(secret));
}

/** Writes like the kubelet: a new file renamed over the old one. */
async function rotate(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(`${path}.new`, text);
  await Deno.rename(`${path}.new`, path);
}

async function status(url: string, bearer: string): Promise<number> {
  const res = await fetch(`${url}/v1/me`, { headers: { Authorization: `Bearer ${bearer}` } });
  await res.body?.cancel();
  return res.status;
}

Deno.test("a rotated JWT_HS256_KEYS_FILE applies without a restart; requests in flight finish", async () => {
  await using stack = await useTestStack();
  const dir = await Deno.makeTempDir({ prefix: "pco-secrets-" });
  const keysFile = `${dir}/JWT_HS256_KEYS`;
  await Deno.writeTextFile(keysFile, `${K1}\n`);
  const { edge, url } = await startEdge({
    ...stack.env(),
    JWT_HS256_KEYS_FILE: keysFile,
    SECRETS_RELOAD_MS: "100",
  });
  try {
    const [first, second] = await Promise.all([token(K1), token(K2)]);
    assert.equal(await status(url, first), 200);
    assert.equal(await status(url, second), 401);

    // A request in flight across the rotation: its body is still being sent.
    const body = new TransformStream<Uint8Array, Uint8Array>();
    const inFlight = fetch(`${url}/v1/events`, {
      method: "POST",
      headers: { Authorization: `Bearer ${first}`, "Content-Type": "application/json" },
      body: body.readable,
    });
    const writer = body.writable.getWriter();
    await writer.write(new TextEncoder().encode('{"events":'));

    await rotate(keysFile, `${K1},${K2}\n`);
    await waitUntil(async () => await status(url, second) === 200, {
      what: "the new kid verifies",
      timeoutMs: 30_000,
      everyMs: 50,
    });
    assert.equal(await status(url, first), 200, "the old kid verifies while it is listed");

    await writer.write(new TextEncoder().encode("[]}"));
    await writer.close();
    const res = await inFlight;
    await res.body?.cancel();
    assert.ok(res.status !== 401 && res.status < 500, `in-flight request got ${res.status}`);

    await rotate(keysFile, `${K2}\n`);
    await waitUntil(async () => await status(url, first) === 401, {
      what: "the removed kid stops verifying",
      timeoutMs: 30_000,
      everyMs: 50,
    });
    assert.equal(await status(url, second), 200);

    // An invalid rotation is refused and the keys in force stay.
    await rotate(keysFile, "k3:too-short\n");
    await edge.waitFor((l) => l.msg === "rotated secret is invalid; keeping the value in force");
    assert.equal(await status(url, second), 200);

    assert.equal(edge.logsWith("edge listening").length, 1, "the edge never restarted");
    assert.equal(edge.logsWith("secret reloaded").length, 2);
    assert.ok(!edge.lines.some((l) => l.includes("rotation-secret") || l.includes("too-short")));
  } finally {
    await edge.kill();
    await Deno.remove(dir, { recursive: true });
  }
});
