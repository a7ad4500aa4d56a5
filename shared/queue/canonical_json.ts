/**
 * Canonical JSON: object keys sorted at every depth, so two payloads that
 * are equal as data give the same text (and the same derived idempotency key).
 * Values JSON cannot carry faithfully are rejected with their path instead of
 * being silently dropped or turned into null by JSON.stringify.
 *
 * @module
 */

import { DEFAULT_MAX_JSON_DEPTH } from "../json_depth.ts";

/** A value JSON cannot represent faithfully; `path` says where. */
export class NotSerializableError extends Error {
  override name = "NotSerializableError";
  constructor(readonly path: string, readonly reason: string) {
    super(`${path || "(root)"}: ${reason}`);
  }
}

function encode(value: unknown, path: string, seen: Set<object>): string {
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) {
        throw new NotSerializableError(path, `${value} is not valid JSON`);
      }
      return JSON.stringify(value);
    case "undefined":
      throw new NotSerializableError(path, "undefined is not valid JSON");
    case "bigint":
      throw new NotSerializableError(path, "a BigInt is not valid JSON");
    case "function":
    case "symbol":
      throw new NotSerializableError(path, `a ${typeof value} is not valid JSON`);
  }
  if (value === null) return "null";
  const obj = value as object;
  if (seen.has(obj)) throw new NotSerializableError(path, "circular reference");
  // `seen` holds the ancestors: its size is the depth. Bounded so that a
  // caller's deeply nested value is refused instead of overflowing the stack.
  if (seen.size >= DEFAULT_MAX_JSON_DEPTH) {
    throw new NotSerializableError(path, `nested deeper than ${DEFAULT_MAX_JSON_DEPTH} levels`);
  }
  seen.add(obj);
  try {
    if (Array.isArray(obj)) {
      return `[${obj.map((v, i) => encode(v, `${path}[${i}]`, seen)).join(",")}]`;
    }
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: string } }).constructor?.name ?? "object";
      throw new NotSerializableError(path, `a ${name} is not plain JSON data`);
    }
    const keys = Object.keys(obj).sort();
    const parts: string[] = [];
    for (const k of keys) {
      const v = (obj as Record<string, unknown>)[k];
      // Absent and undefined are the same thing to JSON readers: skip, as JSON.stringify does.
      if (v === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${encode(v, path ? `${path}.${k}` : k, seen)}`);
    }
    return `{${parts.join(",")}}`;
  } finally {
    seen.delete(obj);
  }
}

/** Serialises `value` canonically; throws NotSerializableError naming the bad path. */
export function canonicalJson(value: unknown): string {
  return encode(value, "", new Set());
}
