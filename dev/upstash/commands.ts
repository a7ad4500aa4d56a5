/**
 * Request bodies → Redis commands: shape checks, argument conversion
 * (docs/reference/upstash-rest-protocol.md §2) and the commands the bridge refuses (§10).
 *
 * @module
 */
import { BridgeRequestError } from "./errors.ts";

/** One command as Redis receives it: `args[0]` is the name, every element is a string. */
export interface ParsedCommand {
  /** `args[0]` upper-cased, for the bridge's own checks; Redis gets `args` unchanged. */
  readonly name: string;
  /** Name and arguments, all strings. */
  readonly args: string[];
}

/**
 * Commands that change the state of the connection they run on. Requests share
 * pooled connections, so one client's SELECT or MULTI would leak into another's
 * commands; Upstash does not offer them either.
 */
const CONNECTION_STATE_COMMANDS = new Set([
  "AUTH",
  "DISCARD",
  "EXEC",
  "HELLO",
  "MONITOR",
  "MULTI",
  "PSUBSCRIBE",
  "PSYNC",
  "PUNSUBSCRIBE",
  "QUIT",
  "READONLY",
  "READWRITE",
  "REPLCONF",
  "RESET",
  "SELECT",
  "SSUBSCRIBE",
  "SUBSCRIBE",
  "SUNSUBSCRIBE",
  "SYNC",
  "UNSUBSCRIBE",
  "UNWATCH",
  "WATCH",
]);

/**
 * Server administration: reconfiguring, persisting, replicating, debugging or
 * stopping the server is no client's business (Upstash refuses them too), and
 * with CONFIG a client could point the data directory anywhere and write
 * files as the server's user.
 */
const ADMIN_COMMANDS = new Set([
  "ACL",
  "BGREWRITEAOF",
  "BGSAVE",
  "CLUSTER",
  "CONFIG",
  "DEBUG",
  "FAILOVER",
  "LATENCY",
  "MIGRATE",
  "MODULE",
  "MONITOR",
  "PSYNC",
  "REPLCONF",
  "REPLICAOF",
  "SAVE",
  "SHUTDOWN",
  "SLAVEOF",
  "SLOWLOG",
]);

/** Blocking commands would hold a shared connection for their whole timeout. */
const BLOCKING_COMMANDS = new Set([
  "BLMOVE",
  "BLMPOP",
  "BLPOP",
  "BRPOP",
  "BRPOPLPUSH",
  "BZMPOP",
  "BZPOPMAX",
  "BZPOPMIN",
  "WAIT",
  "WAITAOF",
]);

/** CLIENT subcommands that only read information; every other one changes the connection. */
const CLIENT_INFO_SUBCOMMANDS = new Set([
  "GETNAME",
  "GETREDIR",
  "HELP",
  "ID",
  "INFO",
  "LIST",
  "TRACKINGINFO",
]);

/**
 * Converts one JSON command (`["set","k",1]`) in place: numbers become
 * `String(n)`, booleans `"true"`/`"false"`, `null` (what JSON makes of an
 * `undefined` argument) the empty string, as SRH does. Nested arrays or objects
 * are a client bug and rejected. `where` names the command in error messages.
 */
export function parseCommand(value: unknown, where = "the command"): ParsedCommand {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeRequestError(
      `ERR ${where} must be a non-empty JSON array such as ["GET","key"]: got ${describe(value)}`,
    );
  }
  const first: unknown = value[0];
  if (typeof first !== "string" || first === "") {
    throw new BridgeRequestError(
      `ERR ${where} must start with the command name as a string: got ${describe(first)}`,
    );
  }
  for (let i = 1; i < value.length; i++) {
    const arg: unknown = value[i];
    if (typeof arg === "string") continue;
    if (typeof arg === "number") value[i] = String(arg);
    else if (typeof arg === "boolean") value[i] = arg ? "true" : "false";
    else if (arg === null) value[i] = "";
    else {
      throw new BridgeRequestError(
        `ERR argument ${i} of ${where} is ${
          describe(arg)
        }: only strings, numbers and booleans are allowed`,
      );
    }
  }
  const args = value as string[];
  const name = first.toUpperCase();
  const refusal = refusalReason(name, args);
  if (refusal !== null) throw new BridgeRequestError(refusal);
  return { name, args };
}

/** Parses the body of `/pipeline` or `/multi-exec`: a non-empty array of commands. */
export function parseCommandList(value: unknown): ParsedCommand[] {
  if (!Array.isArray(value) || value.length === 0) {
    throw new BridgeRequestError(
      `ERR the body must be a non-empty JSON array of commands such as [["GET","key"]]: got ${
        describe(value)
      }`,
    );
  }
  const commands = new Array<ParsedCommand>(value.length);
  for (let i = 0; i < value.length; i++) {
    commands[i] = parseCommand(value[i], `command ${i + 1}`);
  }
  return commands;
}

/** Parses a request body as JSON; a syntax error becomes a 400. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BridgeRequestError(
      `ERR the request body is not valid JSON: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Why the bridge refuses `args`, or null when Redis may run it. */
function refusalReason(name: string, args: string[]): string | null {
  if (ADMIN_COMMANDS.has(name)) {
    return `ERR command '${name}' is not allowed through the Upstash REST bridge: it administers the server`;
  }
  if (CONNECTION_STATE_COMMANDS.has(name)) {
    return `ERR command '${name}' is not supported by the Upstash REST bridge: it would change the state of a shared connection`;
  }
  if (
    BLOCKING_COMMANDS.has(name) || ((name === "XREAD" || name === "XREADGROUP") && blocks(args))
  ) {
    return `ERR blocking command '${name}' is not supported by the Upstash REST bridge`;
  }
  if (name === "CLIENT") {
    const sub = (args[1] ?? "").toUpperCase();
    if (!CLIENT_INFO_SUBCOMMANDS.has(sub)) {
      return `ERR command 'CLIENT ${sub}' is not supported by the Upstash REST bridge: only CLIENT ${
        [...CLIENT_INFO_SUBCOMMANDS].join("/")
      } are`;
    }
  }
  return null;
}

/**
 * True when an XREAD/XREADGROUP has a BLOCK option. Options all come before
 * STREAMS; the values of GROUP and COUNT are skipped so that a group or
 * consumer named "block" is not mistaken for the option.
 */
function blocks(args: string[]): boolean {
  for (let i = 1; i < args.length; i++) {
    const word = args[i]!.toUpperCase();
    if (word === "STREAMS") return false;
    if (word === "BLOCK") return true;
    if (word === "GROUP") i += 2;
    else if (word === "COUNT") i += 1;
  }
  return false;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return value.length === 0 ? "an empty array" : "an array";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
