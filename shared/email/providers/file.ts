/**
 * The local default provider: writes each message as an .eml file that any
 * mail client opens. The file name comes from the Message-ID (the ledger id
 * for our own ids), and the write is temp file + rename in the same
 * directory, so a retried send replaces the file instead of adding one and a
 * reader never sees half a message. A process killed mid-write leaves its
 * hidden temp file behind; the first send of each provider removes temp files
 * older than `staleTmpMs` (far older than any write in flight, whichever
 * worker owns it).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { composeEml, type OutgoingEmail } from "../message.ts";
import {
  abortedError,
  type EmailProvider,
  EmailTransientError,
  type SendOptions,
  type SendResult,
} from "../provider.ts";

/** Options of `createFileProvider`. */
export interface FileProviderOptions {
  /** Directory for the .eml files; created when missing. */
  dir: string;
  /** Temp files older than this are left over from killed writes, ms. @default 3_600_000 */
  staleTmpMs?: number;
}

const TMP = /^\..+\.tmp$/;

/** Removes temp files older than `maxAgeMs` from `dir`; best effort (never throws). */
async function sweepStaleTemps(dir: string, maxAgeMs: number): Promise<void> {
  const before = Date.now() - maxAgeMs;
  try {
    for await (const entry of Deno.readDir(dir)) {
      if (!entry.isFile || !TMP.test(entry.name)) continue;
      const path = `${dir}/${entry.name}`;
      const { mtime } = await Deno.lstat(path).catch(() => ({ mtime: null }));
      if (mtime !== null && mtime.getTime() < before) await Deno.remove(path).catch(() => {});
    }
  } catch {
    // A folder we cannot list now is listed by the next process; sends go on.
  }
}

const MAX_STEM = 120;

/**
 * The file name for a Message-ID: its id-left (the ledger id for ids from
 * `messageIdFor`) when that is a safe file name, otherwise a sanitised form
 * plus a hash of the whole id so that distinct ids never share a file.
 */
export function emlFileName(messageId: string): string {
  const bare = messageId.replace(/^<|>$/g, "");
  const left = bare.includes("@") ? bare.slice(0, bare.lastIndexOf("@")) : bare;
  if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(left) && left.length <= MAX_STEM) return `${left}.eml`;
  const safe = bare.replace(/[^A-Za-z0-9._-]/g, "_").replace(/^\.+/, "_").slice(0, MAX_STEM);
  const hash = createHash("sha256").update(messageId).digest("hex").slice(0, 12);
  return `${safe}-${hash}.eml`;
}

/** A provider that writes `<dir>/<ledger id>.eml`. */
export function createFileProvider(options: FileProviderOptions): EmailProvider {
  const dir = options.dir.replace(/\/+$/, "") || "/";
  const staleTmpMs = options.staleTmpMs ?? 3_600_000;
  if (!Number.isFinite(staleTmpMs) || staleTmpMs <= 0) {
    throw new RangeError(`File provider option "staleTmpMs" must be positive: got ${staleTmpMs}`);
  }
  // Created (and swept) once, not per message (retried after a failure).
  let dirReady: Promise<void> | null = null;
  const ensureDir = () =>
    dirReady ??= Deno.mkdir(dir, { recursive: true }).then(() => sweepStaleTemps(dir, staleTmpMs))
      .catch((err) => {
        dirReady = null;
        throw err;
      });
  const syncDir = directorySyncer(dir);
  return {
    name: "file",
    async send(msg: OutgoingEmail, opts: SendOptions): Promise<SendResult> {
      if (opts.signal?.aborted) throw abortedError("file", opts.signal);
      const eml = await composeEml(msg);
      const name = emlFileName(msg.messageId);
      const path = `${dir}/${name}`;
      const tmp = `${dir}/.${name}.${crypto.randomUUID()}.tmp`;
      try {
        await ensureDir();
        // fsync before rename: after a crash the name points at the whole file or at nothing.
        const file = await Deno.open(tmp, { write: true, createNew: true });
        try {
          for (let off = 0; off < eml.length;) off += await file.write(eml.subarray(off));
          await file.syncData();
        } finally {
          file.close();
        }
        await Deno.rename(tmp, path);
        // The rename is durable only once the directory is synced; the ledger
        // says "sent" after this returns.
        await syncDir();
      } catch (err) {
        await Deno.remove(tmp).catch(() => {});
        throw new EmailTransientError(`Cannot write ${path}: ${(err as Error).message}`, {
          provider: "file",
          cause: err,
        });
      }
      return { providerMessageId: name, response: `written ${path}` };
    },
  };
}

/**
 * fsyncs `dir`, coalescing concurrent callers: a sync that STARTED after a
 * caller's rename covers it, so callers arriving while one runs share the
 * next one (group commit) instead of each paying a sync.
 */
function directorySyncer(dir: string): () => Promise<void> {
  let next: Promise<void> | null = null;
  let running: Promise<void> | null = null;
  const syncOnce = async () => {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.syncData();
    } finally {
      handle.close();
    }
  };
  return () => {
    next ??= (async () => {
      await running?.catch(() => {});
      next = null; // later callers renamed after this sync starts: they wait for another
      const current = syncOnce();
      running = current;
      try {
        await current;
      } finally {
        if (running === current) running = null;
      }
    })();
    return next;
  };
}
