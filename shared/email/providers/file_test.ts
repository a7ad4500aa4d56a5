import assert from "node:assert/strict";
import { createFileProvider, emlFileName } from "./file.ts";
import { EmailTransientError } from "../provider.ts";
import { messageIdFor } from "../message.ts";
import { leafParts, parseEntity, sampleEmail } from "../../../testing/email.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "email_file_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function list(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  return names.sort();
}

Deno.test("emlFileName() uses the ledger id of our Message-IDs", () => {
  assert.equal(emlFileName(messageIdFor("0193c0de-7a1b", "pc.example")), "0193c0de-7a1b.eml");
  assert.equal(emlFileName("<task.42@pc.example>"), "task.42.eml");
});

Deno.test("emlFileName() sanitises foreign ids and keeps distinct ids apart", () => {
  const a = emlFileName("<../../etc/passwd@evil.example>");
  const b = emlFileName("<.._.._etc_passwd@evil.example>");
  assert.match(a, /^[A-Za-z0-9_][A-Za-z0-9._-]*\.eml$/);
  assert.ok(!a.includes("/"));
  assert.notEqual(a, b);
  assert.ok(emlFileName(`<${"x".repeat(500)}@pc.example>`).length < 150);
});

Deno.test("file provider: two sends of the same message leave exactly one valid .eml", async () => {
  await withTempDir(async (root) => {
    const dir = `${root}/outbox/nested`; // created on first send
    const provider = createFileProvider({ dir });
    const msg = sampleEmail({ messageId: messageIdFor("ledger-1", "pleasantcove.example") });
    const first = await provider.send(msg, {});
    const second = await provider.send(msg, {});
    assert.equal(provider.name, "file");
    assert.equal(first.providerMessageId, "ledger-1.eml");
    assert.deepEqual(second, first);
    assert.deepEqual(await list(dir), ["ledger-1.eml"]); // no temp files either
    const eml = await Deno.readTextFile(`${dir}/ledger-1.eml`);
    const top = parseEntity(eml);
    assert.equal(top.headers.get("message-id"), "<ledger-1@pleasantcove.example>");
    assert.equal(top.headers.get("to"), msg.to);
    assert.equal(leafParts(top).length, 3);
  });
});

Deno.test("file provider: concurrent sends of the same message also leave one file", async () => {
  await withTempDir(async (dir) => {
    const provider = createFileProvider({ dir });
    const msg = sampleEmail({ messageId: "<ledger-2@pc.example>" });
    await Promise.all([1, 2, 3].map(() => provider.send(msg, {})));
    assert.deepEqual(await list(dir), ["ledger-2.eml"]);
  });
});

Deno.test("file provider: different messages get different files", async () => {
  await withTempDir(async (dir) => {
    const provider = createFileProvider({ dir });
    await provider.send(sampleEmail({ messageId: "<a@pc.example>" }), {});
    await provider.send(sampleEmail({ messageId: "<b@pc.example>" }), {});
    assert.deepEqual(await list(dir), ["a.eml", "b.eml"]);
  });
});

Deno.test("file provider: an unwritable directory is a transient error and leaves no temp file", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/blocker`, "a file where the directory should be");
    const provider = createFileProvider({ dir: `${dir}/blocker` });
    await assert.rejects(provider.send(sampleEmail(), {}), (err) => {
      assert.ok(err instanceof EmailTransientError);
      assert.equal(err.provider, "file");
      return true;
    });
    assert.deepEqual(await list(dir), ["blocker"]);
  });
});

Deno.test("file provider: an aborted signal writes nothing", async () => {
  await withTempDir(async (dir) => {
    const provider = createFileProvider({ dir });
    const signal = AbortSignal.abort(new Error("task timed out"));
    await assert.rejects(provider.send(sampleEmail(), { signal }), EmailTransientError);
    assert.deepEqual(await list(dir), []);
  });
});

Deno.test("file provider: the first send removes temp files of killed writes, not young ones", async () => {
  await withTempDir(async (dir) => {
    const stale = `${dir}/.ledger-old.eml.1111.tmp`;
    const young = `${dir}/.ledger-now.eml.2222.tmp`;
    const notOurs = `${dir}/notes.tmp`;
    for (const path of [stale, young, notOurs]) await Deno.writeTextFile(path, "partial");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await Deno.utime(stale, twoHoursAgo, twoHoursAgo);
    await Deno.utime(notOurs, twoHoursAgo, twoHoursAgo);
    const provider = createFileProvider({ dir });
    await provider.send(sampleEmail({ messageId: messageIdFor("ledger-2", "x.example") }), {});
    // Another worker's write in flight is young: it stays; so does what is not a temp file of ours.
    assert.deepEqual(
      await list(dir),
      [young, notOurs, `${dir}/ledger-2.eml`].map((p) => p.slice(dir.length + 1)).sort(),
    );
    assert.throws(() => createFileProvider({ dir, staleTmpMs: 0 }), RangeError);
  });
});
