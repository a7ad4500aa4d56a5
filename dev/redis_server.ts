/**
 * A throwaway redis-server on a free loopback port, AOF on, data in a directory
 * the caller owns. It can be stopped and started again on the same port and
 * data (the resilience tests take Redis away and bring it back).
 *
 * It requires a password (random unless given), written to a config file in
 * the data directory rather than on the command line (where `ps` shows it):
 * anything else on the machine that can reach the loopback port cannot run
 * commands. The bridge and every direct client get it from {@linkcode
 * RedisServer.password} / {@linkcode RedisServer.url}.
 *
 * @module
 */
import { findBinary } from "./binaries.ts";
import { startWithPortRetry } from "./ports.ts";
import { ServerProcess, waitUntilReady } from "./server_process.ts";

/** Options for {@linkcode startRedisServer}. */
export interface RedisServerOptions {
  /** Directory for the AOF files; must exist. */
  dir: string;
  /** AOF fsync policy. @default "everysec" */
  appendfsync?: "everysec" | "always" | "no";
  /** Fixed port; a free one is picked when omitted. */
  port?: number;
  /** The `requirepass` password. @default 32 random hex digits */
  password?: string;
}

/**
 * Sends `command` (one inline command) after AUTH on a fresh connection and
 * returns the command's reply line(s) as text. For readiness checks and tests
 * that must reach redis-server past the bridge (e.g. CLIENT KILL).
 */
export async function redisCommand(
  port: number,
  password: string,
  command: string,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    // RESP array form, so the password needs no inline-command quoting.
    const auth = `*2\r\n$4\r\nAUTH\r\n$${
      new TextEncoder().encode(password).length
    }\r\n${password}\r\n`;
    await conn.write(new TextEncoder().encode(`${auth}${command}\r\n`));
    let text = "";
    const buf = new Uint8Array(1024);
    // The AUTH reply line, then at least one line of the command's reply.
    while (text.split("\r\n").length < 3) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [authReply, ...rest] = text.split("\r\n");
    if (authReply !== "+OK") throw new Error(`redis-server refused AUTH: ${authReply}`);
    return rest.join("\r\n").trim();
  } finally {
    conn.close();
  }
}

async function pingOnce(port: number, password: string): Promise<boolean> {
  return (await redisCommand(port, password, "PING")).startsWith("+PONG");
}

/** A running (or stopped, restartable) redis-server. */
export class RedisServer {
  readonly port: number;
  /** The password every client must send (AUTH). */
  readonly password: string;
  readonly #binary: string;
  readonly #options: RedisServerOptions;
  #process: ServerProcess | null = null;

  private constructor(binary: string, port: number, options: RedisServerOptions) {
    this.#binary = binary;
    this.port = port;
    this.#options = options;
    this.password = options.password ??
      Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0"))
        .join("");
  }

  /** Starts a server; on a port clash it retries with another free port. */
  static async start(options: RedisServerOptions): Promise<RedisServer> {
    const binary = findBinary("redis-server");
    if (options.port !== undefined) {
      const server = new RedisServer(binary, options.port, options);
      await server.restart();
      return server;
    }
    return await startWithPortRetry(async (port) => {
      const server = new RedisServer(binary, port, options);
      try {
        await server.restart();
      } catch (err) {
        if (/Address already in use/i.test(String(err))) {
          throw new Deno.errors.AddrInUse(String(err), { cause: err });
        }
        throw err;
      }
      return server;
    });
  }

  /** `redis://:<password>@127.0.0.1:<port>` */
  get url(): string {
    return `redis://:${encodeURIComponent(this.password)}@127.0.0.1:${this.port}`;
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.#process !== null && !this.#process.exited;
  }

  /** Process id of the running server, or null. */
  get pid(): number | null {
    return this.running ? this.#process!.pid : null;
  }

  /** Starts the server (again) on the same port and data directory. */
  async restart(): Promise<void> {
    if (this.running) return;
    const conf = `${this.#options.dir}/redis.conf`;
    await Deno.writeTextFile(conf, `requirepass "${this.password.replaceAll('"', '\\"')}"\n`, {
      mode: 0o600,
    });
    const args = [
      conf,
      "--port",
      String(this.port),
      "--bind",
      "127.0.0.1",
      "--dir",
      this.#options.dir,
      "--appendonly",
      "yes",
      "--appendfsync",
      this.#options.appendfsync ?? "everysec",
      "--save",
      "",
      "--daemonize",
      "no",
      "--logfile",
      "",
      "--protected-mode",
      "yes",
    ];
    const proc = new ServerProcess(this.#binary, args, { name: "redis-server" });
    this.#process = proc;
    try {
      await waitUntilReady(proc, () => pingOnce(this.port, this.password), 10_000);
    } catch (err) {
      await proc.stop("SIGKILL");
      this.#process = null;
      throw err;
    }
  }

  /** Stops the server (SIGTERM: redis flushes the AOF and exits). */
  async stop(): Promise<void> {
    const proc = this.#process;
    this.#process = null;
    if (proc) await proc.stop("SIGTERM");
  }
}
