/**
 * Lua scripts across the Upstash/Redis gap (docs/reference/upstash-rest-protocol.md §7.3):
 * `@upstash/ratelimit` ≥ 2.1 starts its scripts with
 * `#!lua flags=allow-key-locking`, an Upstash-only flag that stock Redis
 * rejects ("Unexpected flag in script shebang"). The bridge strips that flag
 * and remembers sha1(original) → sha1(rewritten), so that the clients'
 * EVALSHA with the SHA of the text they know hits the script Redis cached.
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { ParsedCommand } from "./commands.ts";
import type { RedisReply } from "./resp_json.ts";

const UPSTASH_ONLY_FLAG = "allow-key-locking";

/** Bounds the SHA map; scripts are few, but a client generating them must not grow it forever. */
const MAX_MAPPED_SCRIPTS = 10_000;

/** Lower-case hex SHA-1 of the UTF-8 bytes of `text` (what Redis and the clients compute). */
export function sha1Hex(text: string): string {
  return createHash("sha1").update(text).digest("hex");
}

/**
 * Removes `allow-key-locking` from a `#!lua flags=…` first line and keeps
 * every other flag and every other line, so Lua error line numbers still
 * match. Returns null when the script needs no change.
 */
export function rewriteShebang(script: string): string | null {
  if (!script.startsWith("#!lua")) return null;
  const newline = script.indexOf("\n");
  let firstLine = newline === -1 ? script : script.slice(0, newline);
  if (!firstLine.includes(UPSTASH_ONLY_FLAG)) return null;
  const carriageReturn = firstLine.endsWith("\r");
  if (carriageReturn) firstLine = firstLine.slice(0, -1);
  let changed = false;
  const words = firstLine.split(" ").map((word) => {
    if (!word.startsWith("flags=")) return word;
    const flags = word.slice("flags=".length).split(",");
    const kept = flags.filter((flag) => flag !== UPSTASH_ONLY_FLAG);
    if (kept.length === flags.length) return word;
    changed = true;
    return `flags=${kept.join(",")}`;
  });
  if (!changed) return null;
  const rest = newline === -1 ? "" : script.slice(newline);
  return words.join(" ") + (carriageReturn ? "\r" : "") + rest;
}

/** Rewrites replies of commands whose arguments the registry changed (SCRIPT LOAD). */
export type ReplyFix = (reply: RedisReply) => RedisReply;

/**
 * The original → rewritten SHA map of one bridge. After a bridge restart or a
 * SCRIPT FLUSH the clients' NOSCRIPT → EVAL fallback refills it.
 */
export class ScriptRegistry {
  readonly #rewrittenSha = new Map<string, string>();

  /** Number of remembered scripts. */
  get size(): number {
    return this.#rewrittenSha.size;
  }

  /**
   * Adapts `command` in place for stock Redis: rewrites the script of EVAL,
   * EVAL_RO and SCRIPT LOAD, translates known SHAs of EVALSHA, EVALSHA_RO and
   * SCRIPT EXISTS. Returns a reply fix when the reply must be changed back
   * (SCRIPT LOAD answers the SHA of the text the client sent).
   */
  prepare(command: ParsedCommand): ReplyFix | undefined {
    const { name, args } = command;
    switch (name) {
      case "EVAL":
      case "EVAL_RO":
        if (args.length > 1) this.#rewriteAt(args, 1);
        return undefined;
      case "EVALSHA":
      case "EVALSHA_RO":
        if (args.length > 1) args[1] = this.#translate(args[1]!);
        return undefined;
      case "SCRIPT":
        return this.#prepareScript(args);
      default:
        return undefined;
    }
  }

  #prepareScript(args: string[]): ReplyFix | undefined {
    const sub = (args[1] ?? "").toUpperCase();
    if (sub === "LOAD" && args.length === 3) {
      const originalSha = this.#rewriteAt(args, 2);
      if (originalSha === null) return undefined;
      const answer = new TextEncoder().encode(originalSha);
      // An error reply (e.g. a Lua syntax error) passes through untouched.
      return (reply) => (reply instanceof Uint8Array ? answer : reply);
    }
    if (sub === "EXISTS") {
      for (let i = 2; i < args.length; i++) args[i] = this.#translate(args[i]!);
    }
    return undefined;
  }

  /** Rewrites the script at `args[index]`; returns its original SHA, or null if unchanged. */
  #rewriteAt(args: string[], index: number): string | null {
    const original = args[index]!;
    const rewritten = rewriteShebang(original);
    if (rewritten === null) return null;
    args[index] = rewritten;
    const originalSha = sha1Hex(original);
    if (!this.#rewrittenSha.has(originalSha)) {
      if (this.#rewrittenSha.size >= MAX_MAPPED_SCRIPTS) {
        // Maps iterate in insertion order: drop the oldest entry.
        this.#rewrittenSha.delete(this.#rewrittenSha.keys().next().value!);
      }
      this.#rewrittenSha.set(originalSha, sha1Hex(rewritten));
    }
    return originalSha;
  }

  #translate(sha: string): string {
    return this.#rewrittenSha.get(sha.toLowerCase()) ?? sha;
  }
}
