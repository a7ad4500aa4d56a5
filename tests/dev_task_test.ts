import assert from "node:assert/strict";
import { processesUsing } from "../dev/leftovers.ts";
import { waitUntil } from "../testing/wait.ts";

const ROOT = new URL("../", import.meta.url).pathname;

Deno.test("deno task dev --seed brings up a ready system that trains a champion per population, and Ctrl-C stops everything it started", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "pcd-" });
  await Deno.chmod(tmp, 0o755);
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "dev/dev.ts", "--seed"],
    cwd: ROOT,
    env: {
      PATH: Deno.env.get("PATH") ?? "",
      TMPDIR: tmp,
      NO_COLOR: "1",
      EDGE_PORT: "0",
      EDGE_ADMIN_PORT: "0",
      WORKER_ADMIN_PORT: "0",
      // Inside the temp dir: never a developer's own .dev.env, and checked for removal below.
      DEV_ENV_FILE: `${tmp}/dev.env`,
    },
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  const stdout = (async () => {
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) out += chunk;
  })();
  const logs = () =>
    out.split("\n").filter((l) => l.startsWith("{")).map((l) =>
      JSON.parse(l) as Record<string, unknown>
    );
  let stderr = "";
  try {
    const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let url: string | null = null;
    while (url === null) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
      url = /try:\s+curl -i (\S+)\/ready/.exec(stderr)?.[1] ?? null;
    }
    assert.ok(url, `dev never printed its curl example:\n${stderr}`);
    const res = await fetch(`${url}/ready`);
    const body = await res.json();
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.equal(body.status, "ready");
    // The edge is ready before the worker: wait on the worker's own /ready (its
    // admin listener, printed by dev) so that its startup is complete.
    let workerAdmin: string | null = null;
    while (workerAdmin === null) {
      const { value, done } = await reader.read();
      if (done) break;
      stderr += value;
      workerAdmin = /metrics \(worker\): (\S+)\/metrics/.exec(stderr)?.[1] ?? null;
      // Printed last: the URL would have come before it.
      if (workerAdmin === null && stderr.includes("Ctrl-C stops everything")) break;
    }
    assert.ok(workerAdmin, `dev never printed the worker's metrics URL:\n${stderr}`);
    await waitUntil(async () => {
      const ready = await fetch(`${workerAdmin}/ready`).catch(() => null);
      await ready?.body?.cancel();
      return ready?.status === 200;
    }, { timeoutMs: 90_000, everyMs: 200, what: "the worker to become ready" });
    // The whole loop from --seed (docs/lead-scoring.md §Operations): the worker's
    // scheduler queues this week's training at start, after the seed, and on the
    // seeded leads each population's model passes the default gate.
    assert.match(stderr, /demo data seeded: \{"businesses":5000,/);
    const activated = () =>
      new Set(
        logs().filter((l) => l.msg === "lead-scoring model.activated").map((l) => l.population),
      );
    await waitUntil(() => activated().size === 2, {
      timeoutMs: 120_000,
      everyMs: 250,
      what: "a champion for each population",
      detail: () => JSON.stringify(logs().filter((l) => l.type === "model.trained")),
    });
    // The stack's settings are in the env file (0600), and the tools reach the stack through it.
    const envFile = `${tmp}/dev.env`;
    assert.match(stderr, new RegExp(`env {5}${envFile} `));
    assert.equal((await Deno.stat(envFile)).mode! & 0o777, 0o600);
    const tool = async (entry: string, ...args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", entry, ...args],
        cwd: ROOT,
        env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", DEV_ENV_FILE: envFile },
        clearEnv: true,
        stdin: "null",
      }).output();
      const text = {
        out: new TextDecoder().decode(out.stdout),
        err: new TextDecoder().decode(out.stderr),
      };
      assert.equal(out.code, 0, `${entry}: ${text.err}`);
      assert.match(text.err, /Using the dev stack of deno task dev \(pid \d+\) from /);
      return text;
    };
    // A fresh stack's queue: the list answers, and it is empty.
    const dead = JSON.parse((await tool("workers/dlq_cli.ts", "list")).out);
    assert.equal(dead.total, 0, JSON.stringify(dead));
    const migrated = (await tool("workers/migrate.ts")).out.split("\n").filter(Boolean)
      .map((l) => JSON.parse(l));
    assert.ok(migrated.some((l) => l.msg === "migrations current" && l.applied === 0));
    const seeded = JSON.parse(
      (await tool("dev/seed.ts", "--leads", "20", "--source", "seed_dev_test")).out,
    );
    assert.equal(seeded.inserted.businesses, 20, JSON.stringify(seeded));

    // The console's address is printed, it answers, and it offers the dev sign-in.
    assert.match(stderr, new RegExp(`console ${url}/console \\(one-click dev sign-in\\)`));
    const page = await fetch(`${url}/console`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /data-dev-sign-in="true"/);

    child.kill("SIGINT");
    const rest = (async () => {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        stderr += value;
      }
    })();
    const status = await child.status;
    await rest;
    assert.equal(status.code, 0, stderr);
    assert.match(stderr, /\[dev\] stopped/);
    assert.match(stderr, new RegExp(`removed ${envFile}`));
    await stdout;
    assert.ok(logs().some((l) => l.msg === "worker ready"));
    assert.ok(logs().some((l) => l.msg === "edge stopped"));
    assert.deepEqual([...Deno.readDirSync(tmp)], [], "temp directories left behind");
    assert.deepEqual(processesUsing(tmp), []);
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // exited
    }
    await child.status;
    await stdout.catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
});
