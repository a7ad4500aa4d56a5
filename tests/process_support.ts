/**
 * Support for suites that run the real entry points as child processes.
 *
 * @module
 */

const ROOT = new URL("../", import.meta.url).pathname;

/** A child deno process whose stdout JSON log lines are collected. */
export class AppProcess {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly stderr: Promise<string>;
  readonly #stdoutDone: Promise<void>;
  #waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];

  constructor(entry: string, env: Record<string, string>) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-sys", entry],
      cwd: ROOT,
      env: { PATH: Deno.env.get("PATH") ?? "", NO_COLOR: "1", ...env },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdoutDone = this.#read();
    this.stderr = new Response(this.child.stderr).text();
  }

  async #read(): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    for await (const chunk of this.child.stdout) {
      partial += decoder.decode(chunk, { stream: true });
      const parts = partial.split("\n");
      partial = parts.pop() ?? "";
      for (const line of parts) {
        this.lines.push(line);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        this.#waiters = this.#waiters.filter((w) => {
          if (!w.match(parsed)) return true;
          w.resolve(parsed);
          return false;
        });
      }
    }
  }

  /** Resolves with the first log line (already seen or future) whose `msg` is `msg`. */
  waitForLog(msg: string, timeoutMs = 15_000): Promise<Record<string, unknown>> {
    for (const line of this.lines) {
      try {
        const parsed = JSON.parse(line);
        if (parsed.msg === msg) return Promise.resolve(parsed);
      } catch {
        // not JSON
      }
    }
    const { promise, resolve, reject } = Promise.withResolvers<Record<string, unknown>>();
    const timer = setTimeout(
      () =>
        reject(new Error(`no "${msg}" log line within ${timeoutMs} ms:\n${this.lines.join("\n")}`)),
      timeoutMs,
    );
    this.#waiters.push({
      match: (l) => l.msg === msg,
      resolve: (l) => {
        clearTimeout(timer);
        resolve(l);
      },
    });
    return promise;
  }

  /** Waits for exit and for the output streams to close. */
  async finished(): Promise<{ code: number; stderr: string }> {
    const [status, stderr] = await Promise.all([this.child.status, this.stderr, this.#stdoutDone]);
    return { code: status.code, stderr };
  }

  /** Kills the process if it still runs (test cleanup). */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.finished();
  }
}

/**
 * A TCP listener that accepts connections and never answers: a dependency
 * that hangs, for timeout and drain tests.
 */
export function blackHole(): { port: number; close(): Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const conn of listener) conns.push(conn);
    } catch {
      // listener closed
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed by the peer
        }
      }
      await accepting;
    },
  };
}
