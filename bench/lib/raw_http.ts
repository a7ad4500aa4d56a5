/**
 * A minimal HTTP/1.1 keep-alive client for load generation: requests are
 * prebuilt bytes written straight to a TCP connection (`Deno.connect`), one
 * request in flight per connection, answers parsed just far enough to find
 * the status and the end of the body (`Content-Length` or chunked).
 *
 * `fetch` costs the load process 90–113 µs of CPU per request (more than the
 * edge spends on `/health`), so a fetch-based load client on the same 2 cores
 * cannot hold a 1,000 req/s schedule (docs/benchmarks.md). This client does a
 * write and a read or two per request and no header objects.
 *
 * @module
 */

/** A request template: everything but an optional per-request header value. */
export interface RawRequest {
  url: URL;
  method: string;
  headers: readonly [string, string][];
  body: string | null;
  /** A header whose value is given per request (`send(conn, value)`). */
  uniqueHeader: string | null;
}

const encoder = new TextEncoder();
const latin1 = new TextDecoder("latin1");
const CRLF2 = [13, 10, 13, 10];

/** Prebuilds a request; `bytes(value)` gives its bytes with the unique header's value. */
export function buildRequest(r: RawRequest): (value?: string) => Uint8Array {
  const body = r.body === null ? null : encoder.encode(r.body);
  const head = [`${r.method} ${r.url.pathname}${r.url.search} HTTP/1.1`, `Host: ${r.url.host}`];
  for (const [name, value] of r.headers) head.push(`${name}: ${value}`);
  if (body !== null) head.push(`Content-Length: ${body.length}`);
  const fixed = head.join("\r\n") + "\r\n";
  const whole = concat(encoder.encode(fixed + "\r\n"), body);
  if (r.uniqueHeader === null) return () => whole;
  const prefix = `${fixed}${r.uniqueHeader}: `;
  return (value = "") => concat(encoder.encode(`${prefix}${value}\r\n\r\n`), body);
}

function concat(a: Uint8Array, b: Uint8Array | null): Uint8Array {
  if (b === null || b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOfSequence(buf: Uint8Array, from: number, to: number, seq: number[]): number {
  outer: for (let i = from; i <= to - seq.length; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

/** Thrown when the connection fails or the answer is not HTTP/1.1 this client can read. */
export class RawHttpError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RawHttpError";
  }
}

/** One keep-alive connection; `request()` sends one request and reads its whole answer. */
export class RawConnection {
  #buf = new Uint8Array(64 * 1024);
  /** Bytes in #buf not yet consumed. */
  #start = 0;
  #end = 0;
  closed = false;

  private constructor(private readonly conn: Deno.Conn) {}

  /** Opens a connection to the URL's host (TLS for https). */
  static async open(url: URL): Promise<RawConnection> {
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const https = url.protocol === "https:";
    const port = Number(url.port || (https ? 443 : 80));
    const conn = https
      ? await Deno.connectTls({ hostname, port })
      : await Deno.connect({ hostname, port });
    if (!https) (conn as Deno.TcpConn).setNoDelay(true);
    return new RawConnection(conn);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }

  /** Sends `bytes`; resolves with the answer's status once its body is read. */
  async request(bytes: Uint8Array): Promise<number> {
    try {
      let written = 0;
      while (written < bytes.length) written += await this.conn.write(bytes.subarray(written));
      return await this.#readResponse();
    } catch (err) {
      this.close();
      throw err instanceof RawHttpError
        ? err
        : new RawHttpError("connection failed", { cause: err });
    }
  }

  /** Reads more bytes into the buffer (compacting or growing it); false at end of stream. */
  async #fill(): Promise<boolean> {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (this.#end === this.#buf.length) {
      const live = this.#end - this.#start;
      const next = live * 2 > this.#buf.length ? new Uint8Array(this.#buf.length * 2) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end)); // overlap-safe within one buffer
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    return true;
  }

  async #readResponse(): Promise<number> {
    let headEnd: number;
    while ((headEnd = indexOfSequence(this.#buf, this.#start, this.#end, CRLF2)) < 0) {
      if (!(await this.#fill())) throw new RawHttpError("connection closed before an answer");
    }
    const head = latin1.decode(this.#buf.subarray(this.#start, headEnd)).toLowerCase();
    const status = Number(head.slice(9, 12));
    if (!head.startsWith("http/1.") || !Number.isInteger(status)) {
      throw new RawHttpError(`not an HTTP/1.x answer: ${head.slice(0, 40)}`);
    }
    this.#start = headEnd + 4;
    const close = /\r\nconnection: *close/.test(head);
    const length = /\r\ncontent-length: *(\d+)/.exec(head);
    const noBody = status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) {
      // no body
    } else if (length) {
      await this.#skip(Number(length[1]));
    } else if (/\r\ntransfer-encoding: *chunked/.test(head)) {
      await this.#skipChunked();
    } else {
      // Body until the server closes the connection.
      while (await this.#fill()) this.#start = this.#end;
      this.close();
    }
    if (close) this.close();
    return status;
  }

  async #skip(n: number): Promise<void> {
    let left = n;
    for (;;) {
      const take = Math.min(left, this.#end - this.#start);
      this.#start += take;
      left -= take;
      if (left === 0) return;
      if (!(await this.#fill())) throw new RawHttpError("connection closed inside a body");
    }
  }

  async #line(): Promise<string> {
    let at: number;
    while ((at = indexOfSequence(this.#buf, this.#start, this.#end, [13, 10])) < 0) {
      if (!(await this.#fill())) throw new RawHttpError("connection closed inside a chunk");
    }
    const line = latin1.decode(this.#buf.subarray(this.#start, at));
    this.#start = at + 2;
    return line;
  }

  async #skipChunked(): Promise<void> {
    for (;;) {
      const size = parseInt(await this.#line(), 16);
      if (!Number.isFinite(size)) throw new RawHttpError("bad chunk size");
      if (size === 0) {
        // Trailers, then an empty line.
        while ((await this.#line()) !== "");
        return;
      }
      await this.#skip(size + 2);
    }
  }
}

/**
 * Up to `max` connections to one origin, opened on demand and reused;
 * a failed connection is dropped and replaced by the next request.
 */
export class RawPool {
  #idle: RawConnection[] = [];
  #all = new Set<RawConnection>();

  constructor(private readonly url: URL) {}

  /** Sends `bytes` on an idle connection (or a new one); resolves with the status. */
  async send(bytes: Uint8Array): Promise<number> {
    let conn = this.#idle.pop();
    if (conn === undefined) {
      conn = await RawConnection.open(this.url);
      this.#all.add(conn);
    }
    try {
      return await conn.request(bytes);
    } finally {
      if (conn.closed) this.#all.delete(conn);
      else this.#idle.push(conn);
    }
  }

  /** Opens `n` connections ahead of the first requests. */
  async warm(n: number): Promise<void> {
    const opened = await Promise.all(
      Array.from({ length: Math.max(0, n - this.#all.size) }, () => RawConnection.open(this.url)),
    );
    for (const c of opened) {
      this.#all.add(c);
      this.#idle.push(c);
    }
  }

  close(): void {
    for (const c of this.#all) c.close();
    this.#all.clear();
    this.#idle = [];
  }
}
