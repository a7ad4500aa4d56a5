/**
 * Child processes for the suites that run the real entry points (and test
 * fixtures): one place that spawns `deno run`, collects the JSON log lines of
 * stdout and waits for a line or for the exit; an edge on a free port; a
 * private redis-server behind its own Upstash bridge.
 *
 * @module
 */
import { denoRunArgs } from "../dev/app_permissions.ts";
import { forEachLine } from "../dev/lines.ts";
import { freePort } from "../dev/ports.ts";
import { RedisServer } from "../dev/redis_server.ts";
import { startUpstashBridge } from "../dev/upstash_bridge.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Options for {@linkcode AppProcess}. */
export interface AppProcessOptions {
  /** Arguments after the entry module. @default [] */
  args?: string[];
  /** Extra Deno permission flags, e.g. `--allow-write=<dir>` for a worker's file provider. */
  permissions?: string[];
}

/** What a finished process left: exit status and everything it wrote to stderr. */
export interface Finished {
  code: number;
  status: Deno.CommandStatus;
  stderr: string;
}

/** A child deno process whose stdout JSON log lines are collected. */
export class AppProcess {
  readonly child: Deno.ChildProcess;
  /** Every stdout line, as written. */
  readonly lines: string[] = [];
  /** The stdout lines that are JSON objects (log lines), parsed. */
  readonly logs: Record<string, unknown>[] = [];
  readonly stderr: Promise<string>;
  readonly #stdoutDone: Promise<void>;
  #exited = false;

  constructor(entry: string, env: Record<string, string>, options: AppProcessOptions = {}) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: denoRunArgs(entry, options.permissions, options.args),
      cwd: ROOT,
      // Admin listeners on free ports: several edges and workers run at once.
      env: {
        PATH: Deno.env.get("PATH") ?? "",
        NO_COLOR: "1",
        APP_ENV: "test",
        EDGE_ADMIN_PORT: "0",
        WORKER_ADMIN_PORT: "0",
        ...env,
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.child.status.then(() => this.#exited = true);
    this.#stdoutDone = this.#read();
    this.stderr = new Response(this.child.stderr).text();
  }

  #read(): Promise<void> {
    return forEachLine(this.child.stdout, (line) => {
      this.lines.push(line);
      try {
        const parsed = JSON.parse(line);
        if (parsed && typeof parsed === "object") this.logs.push(parsed);
      } catch {
        // not a log line
      }
    });
  }

  /** Log lines whose `msg` is `msg`. */
  logsWith(msg: string): Record<string, unknown>[] {
    return this.logs.filter((l) => l.msg === msg);
  }

  /**
   * Resolves with the first log line (already seen or future) matching
   * `match`; fails at `timeoutMs`, or at once when the process exits first.
   */
  async waitFor(
    match: (l: Record<string, unknown>) => boolean,
    timeoutMs = 15_000,
    what = "a matching log line",
  ): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    while (true) {
      for (; seen < this.logs.length; seen++) {
        if (match(this.logs[seen]!)) return this.logs[seen]!;
      }
      if (this.#exited || Date.now() > deadline) {
        if (this.#exited) await this.#stdoutDone;
        for (; seen < this.logs.length; seen++) {
          if (match(this.logs[seen]!)) return this.logs[seen]!;
        }
        const why = this.#exited ? "the process exited" : `${timeoutMs} ms passed`;
        const stderr = this.#exited ? await this.stderr : "";
        throw new Error(`no ${what} before ${why}:\n${this.lines.join("\n")}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Resolves with the first log line whose `msg` is `msg`. */
  waitForLog(msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    return this.waitFor((l) => l.msg === msg, timeoutMs, `"${msg}" log line`);
  }

  /** Waits for exit and for the output streams to close. */
  async finished(): Promise<Finished> {
    const [status, stderr] = await Promise.all([this.child.status, this.stderr, this.#stdoutDone]);
    return { code: status.code, status, stderr };
  }

  /** Sends `signal` (if still running) and waits for the exit. */
  async stop(signal: Deno.Signal): Promise<Finished> {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    return await this.finished();
  }

  /** Kills the process if it still runs (test cleanup). */
  async kill(): Promise<void> {
    await this.stop("SIGKILL");
  }
}
/** Starts edge/main.ts on a free port; resolves once `/health` answers (retries a port taken meanwhile). */
export async function startEdge(
  env: Record<string, string>,
): Promise<{ edge: AppProcess; url: string }> {
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const url = `http://127.0.0.1:${port}`;
    const edge = new AppProcess("edge/main.ts", { ...env, EDGE_PORT: String(port) });
    let exited = false;
    edge.child.status.then(() => exited = true);
    const deadline = performance.now() + 30_000;
    while (!exited && performance.now() < deadline) {
      try {
        const res = await fetch(`${url}/health`);
        await res.body?.cancel();
        if (res.ok) return { edge, url };
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!exited) await edge.kill();
    const { code, stderr } = await edge.finished();
    // The port may have been taken between freePort() and the edge binding it.
    if (attempt < 5 && /address already in use/i.test(stderr + edge.lines.join("\n"))) continue;
    throw new Error(`edge did not become healthy (exit code ${code}):\n${stderr}`);
  }
}

/**
 * A redis-server of our own behind an Upstash REST bridge, for tests whose
 * worker processes must not claim the shared stack's tasks (a worker always
 * uses the "pc" queue namespace). `env` points a process at it.
 */
export async function privateRedis(): Promise<
  { env: Record<string, string>; close(): Promise<void> }
> {
  const dir = await Deno.makeTempDir({ prefix: "pco-redis-" });
  let server: RedisServer | null = null;
  try {
    server = await RedisServer.start({ dir, appendfsync: "no" });
    const token = crypto.randomUUID().replaceAll("-", "");
    const bridge = await startUpstashBridge({
      redisPort: server.port,
      redisPassword: server.password,
      token,
    });
    const s = server;
    return {
      // Both ways to this Redis: a worker's queue scripts use TCP (docs/queue.md).
      env: {
        UPSTASH_REDIS_REST_URL: bridge.url,
        UPSTASH_REDIS_REST_TOKEN: token,
        REDIS_TCP_URL: s.url,
      },
      async close() {
        await bridge.close().catch(() => {});
        await s.stop().catch(() => {});
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      },
    };
  } catch (err) {
    await server?.stop().catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw err;
  }
}
