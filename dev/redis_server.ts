/**
 * A throwaway redis-server on a free loopback port, AOF on, data in a directory
 * the caller owns. It can be stopped and started again on the same port and
 * data (the resilience tests take Redis away and bring it back).
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
}

async function pingOnce(port: number): Promise<boolean> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode("PING\r\n"));
    const buf = new Uint8Array(64);
    const n = await conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("+PONG");
  } finally {
    conn.close();
  }
}

/** A running (or stopped, restartable) redis-server. */
export class RedisServer {
  readonly port: number;
  readonly #binary: string;
  readonly #options: RedisServerOptions;
  #process: ServerProcess | null = null;

  private constructor(binary: string, port: number, options: RedisServerOptions) {
    this.#binary = binary;
    this.port = port;
    this.#options = options;
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

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
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
    const args = [
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
      await waitUntilReady(proc, () => pingOnce(this.port), 10_000);
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
