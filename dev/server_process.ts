/**
 * A long-running child server (redis-server, postgres) with the guarantees the
 * local stack needs: it dies with us even on SIGKILL (PR_SET_PDEATHSIG through
 * `setpriv`), it can run as an unprivileged user when we are root (initdb and
 * postgres refuse uid 0), and its last output lines are kept for error messages.
 *
 * @module
 */
import { forEachLine } from "./lines.ts";

/** Options for {@linkcode spawnServer}. */
export interface SpawnServerOptions {
  /** Human name used in messages, e.g. "redis-server". */
  name: string;
  /** Run as this system user (only honoured when we are root). */
  user?: string;
  /** Extra environment for the child. */
  env?: Record<string, string>;
  /** Working directory. */
  cwd?: string;
}

function setprivPath(): string | null {
  for (const dir of ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]) {
    try {
      if (Deno.statSync(`${dir}/setpriv`).isFile) return `${dir}/setpriv`;
    } catch {
      // not here
    }
  }
  return null;
}

/** Wraps a command so it runs as `user` (when root) and dies when this process dies. */
export function wrapCommand(
  binary: string,
  args: string[],
  user?: string,
): { cmd: string; args: string[] } {
  const setpriv = setprivPath();
  if (setpriv === null) {
    if (user && Deno.uid() === 0) {
      throw new Error(`Cannot run ${binary} as "${user}": setpriv (util-linux) is not installed`);
    }
    return { cmd: binary, args };
  }
  const prefix = ["--pdeathsig", "KILL"];
  if (user && Deno.uid() === 0) prefix.push(`--reuid=${user}`, `--regid=${user}`, "--init-groups");
  return { cmd: setpriv, args: [...prefix, "--", binary, ...args] };
}

/** Runs a short command to completion (as `user` when root); throws with its output on failure. */
export async function runCommand(
  binary: string,
  args: string[],
  options: { user?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<string> {
  const wrapped = wrapCommand(binary, args, options.user);
  const child = new Deno.Command(wrapped.cmd, {
    args: wrapped.args,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) {
    const name = binary.slice(binary.lastIndexOf("/") + 1);
    throw new Error(`${name} failed with exit code ${out.code}: ${text.trim().slice(-2000)}`);
  }
  return text;
}

/** A running child server. */
export class ServerProcess {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  readonly #lines: string[] = [];
  readonly #pumps: Promise<void>[];
  #exited = false;
  readonly status: Promise<Deno.CommandStatus>;

  constructor(binary: string, args: string[], options: SpawnServerOptions) {
    this.name = options.name;
    const wrapped = wrapCommand(binary, args, options.user);
    this.#child = new Deno.Command(wrapped.cmd, {
      args: wrapped.args,
      env: options.env,
      cwd: options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#pumps = [this.#pump(this.#child.stdout), this.#pump(this.#child.stderr)];
    this.status = this.#child.status.then(async (s) => {
      this.#exited = true;
      await Promise.all(this.#pumps);
      return s;
    });
  }

  /** Process id of the child (the server itself: setpriv execs it). */
  get pid(): number {
    return this.#child.pid;
  }

  /** True once the process has exited. */
  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines the server printed, for error messages. */
  recentOutput(): string {
    return this.#lines.join("\n");
  }

  async #pump(stream: ReadableStream<Uint8Array>): Promise<void> {
    try {
      await forEachLine(stream, (line) => {
        this.#lines.push(line);
        if (this.#lines.length > 60) this.#lines.shift();
      });
    } catch {
      // stream closed under us; the status promise reports the exit
    }
  }

  /**
   * Sends `signal`, waits up to `timeoutMs`, then SIGKILLs. Resolves when the
   * process is gone and its output pipes are drained.
   */
  async stop(signal: Deno.Signal = "SIGTERM", timeoutMs = 10_000): Promise<void> {
    if (!this.#exited) {
      try {
        this.#child.kill(signal);
      } catch {
        // already exited
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        this.status.then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), timeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          this.#child.kill("SIGKILL");
        } catch {
          // exited in between
        }
      }
    }
    await this.status;
  }
}

/**
 * Polls `probe` until it resolves true; fails early when the process exits and
 * after `timeoutMs`, with the server's recent output in the message.
 */
export async function waitUntilReady(
  server: ServerProcess,
  probe: () => Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exited) {
      await server.status;
      throw new Error(`${server.name} exited during startup:\n${server.recentOutput()}`);
    }
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(
    `${server.name} did not become ready within ${timeoutMs} ms:\n${server.recentOutput()}`,
  );
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export async function tcpAccepts(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.close();
    return true;
  } catch {
    return false;
  }
}
