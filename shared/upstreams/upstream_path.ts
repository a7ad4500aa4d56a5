/**
 * The path an upstream receives, decided once and the same way by the live
 * proxy (edge/proxy/upstream_routes.ts) and by the replay of a queued write
 * (workers/tasks/forward_request.ts).
 *
 * Every segment is percent-decoded once, as the router does before matching,
 * and refused when the decoded text could move the request elsewhere on a
 * server that decodes again: a `/` or `\` inside a segment (`..%2F`, `%5C`),
 * a dot segment (`.`, `..`, `%2E%2E`), an empty segment (`//`) or a NUL. The
 * rest is re-encoded canonically, so the upstream sees exactly the segments
 * the gateway authorised, and the final URL must still lie below the
 * upstream's base path.
 *
 * @module
 */

/** A path the gateway refuses to forward; `message` is safe to show the caller. */
export class UnsafePathError extends Error {
  readonly code = "invalid-path";
  constructor(message: string) {
    super(message);
    this.name = "UnsafePathError";
  }
}

/** Sub-delimiters and `:`/`@` are legal in a segment (RFC 3986 §3.3); keep them readable. */
const KEEP = /%(24|26|2B|2C|3A|3B|3D|40)/g;

function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(KEEP, (m) => decodeURIComponent(m));
}

/** Decoded segments of `path` (which starts with `/`), or an UnsafePathError. */
function decodeSegments(path: string): string[] {
  const raw = path.split("/").slice(1);
  return raw.map((segment, i) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw new UnsafePathError("The path has an invalid percent-encoding");
    }
    if (/[/\\\0]/.test(decoded) || segment.includes("\\")) {
      throw new UnsafePathError("A path segment may not contain an encoded /, \\ or NUL");
    }
    if (decoded === "." || decoded === "..") {
      throw new UnsafePathError("The path may not contain dot segments");
    }
    // A trailing slash is an empty last segment; one in the middle is `//`.
    if (decoded === "" && i < raw.length - 1) {
      throw new UnsafePathError("The path may not contain empty segments");
    }
    return decoded;
  });
}

function splitQuery(pathAndQuery: string): [string, string] {
  const at = pathAndQuery.indexOf("?");
  return at < 0 ? [pathAndQuery, ""] : [pathAndQuery.slice(0, at), pathAndQuery.slice(at)];
}

/**
 * The canonical path below `prefix` of a request's raw `pathname` (what the
 * router matched, decoded the same way); "" when the request is the prefix.
 */
export function restBelowPrefix(pathname: string, prefix: string): string {
  const segments = decodeSegments(pathname);
  const own = prefix.split("/").slice(1);
  if (own.some((s, i) => segments[i] !== s)) {
    throw new UnsafePathError(`The path is not below ${prefix}`);
  }
  const rest = segments.slice(own.length);
  return rest.length === 0 ? "" : `/${rest.map(encodeSegment).join("/")}`;
}

/**
 * The upstream URL for `rest` (a path below the prefix, with its query): the
 * path is checked and re-encoded again (a queued write's stored path is data,
 * not something the router matched), then the URL must stay below the base.
 */
export function upstreamTarget(baseUrl: string, rest: string): URL {
  const [path, query] = splitQuery(rest);
  if (path !== "" && !path.startsWith("/")) {
    throw new UnsafePathError("The path below the upstream's prefix must start with /");
  }
  const canonical = path === "" ? "" : `/${decodeSegments(path).map(encodeSegment).join("/")}`;
  const base = new URL(baseUrl);
  const url = new URL(base.href.replace(/\/+$/, "") + canonical + query);
  const basePath = base.pathname.replace(/\/+$/, "");
  if (
    url.origin !== base.origin ||
    (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`))
  ) {
    throw new UnsafePathError("The path leaves the upstream's base path");
  }
  return url;
}
