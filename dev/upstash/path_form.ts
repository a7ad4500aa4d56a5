/**
 * The path form of commands that Upstash documents for `curl` users
 * (docs/reference/upstash-rest-protocol.md §12): `GET` or `POST`
 * `/<command>/<arg>/…`, each segment percent-decoded; query parameters other
 * than `_token` are appended as `KEY VALUE` pairs; with POST a non-empty body
 * becomes the last argument (before the query pairs: `/set/foo?EX=100` with a
 * body is `SET foo <body> EX 100`).
 *
 * @module
 */
import { parseCommand, type ParsedCommand } from "./commands.ts";
import { BridgeRequestError } from "./errors.ts";

/** The command a path-form request names; refused commands throw as in the JSON form. */
export function pathFormCommand(url: URL, body: string | null): ParsedCommand {
  const segments = url.pathname.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  const words = segments.map((segment) => {
    try {
      return decodeURIComponent(segment);
    } catch (err) {
      throw new BridgeRequestError(`ERR invalid percent-encoding in the path: ${segment}`, {
        cause: err,
      });
    }
  });
  if (body !== null && body !== "") words.push(body);
  for (const [name, value] of url.searchParams) {
    if (name !== "_token") words.push(name, value);
  }
  return parseCommand(words, "the path command");
}
