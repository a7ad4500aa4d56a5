import assert from "node:assert/strict";
import { AlertTargetRefusedError, checkAlertTarget } from "./target.ts";

const refused = (url: string, allowPrivate: boolean, resolve?: (h: string) => Promise<string[]>) =>
  assert.rejects(
    () => checkAlertTarget(new URL(url), { allowPrivate, ...(resolve ? { resolve } : {}) }),
    AlertTargetRefusedError,
  );
const allowed = (url: string, allowPrivate: boolean, resolve?: (h: string) => Promise<string[]>) =>
  checkAlertTarget(new URL(url), { allowPrivate, ...(resolve ? { resolve } : {}) });

Deno.test("link-local, metadata and unspecified addresses are refused even in development", async () => {
  for (
    const url of [
      "http://169.254.169.254/latest/meta-data/",
      "http://[fe80::1]/",
      "http://[::ffff:169.254.169.254]/",
      "http://0.0.0.0/",
      "http://224.0.0.1/",
    ]
  ) {
    await refused(url, true);
  }
});

Deno.test("private and loopback addresses are refused outside development/test only", async () => {
  for (
    const url of [
      "https://127.0.0.1/",
      "https://10.1.2.3/",
      "https://192.168.0.10/",
      "https://172.16.0.1/",
      "https://[::1]/",
      "https://[fd00::1]/",
      "https://100.64.0.1/",
    ]
  ) {
    await refused(url, false);
    await allowed(url, true);
  }
  await allowed("https://8.8.8.8/", false);
});

Deno.test("a name is resolved and every address it resolves to is checked", async () => {
  const seen: string[] = [];
  const resolve = (answers: string[]) => (host: string) => {
    seen.push(host);
    return Promise.resolve(answers);
  };
  await refused("https://alerts.example/", true, resolve(["169.254.169.254"]));
  await refused("https://alerts.example/", false, resolve(["93.184.215.14", "10.0.0.7"]));
  await allowed("https://alerts.example/", false, resolve(["93.184.215.14", "2606:4700::1"]));
  await refused("https://alerts.example/", false, resolve([]));
  assert.deepEqual(new Set(seen), new Set(["alerts.example"]));
});

Deno.test("a failed lookup is a refusal with its cause (retried by the caller), without the URL", async () => {
  const err = await checkAlertTarget(new URL("https://secret-token@alerts.example/x"), {
    allowPrivate: false,
    resolve: () => Promise.reject(new Error("NXDOMAIN")),
  }).then(() => null, (e) => e);
  assert.ok(err instanceof AlertTargetRefusedError);
  assert.ok(err.cause instanceof Error);
  assert.doesNotMatch(err.message, /alerts\.example|secret-token/);
});
