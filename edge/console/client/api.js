// The console's calls to the /v1 API: every one carries the operator's token
// in an Authorization header and goes through the gateway chain and access
// policy like any other client's. The token lives in this tab's session
// storage only (never a cookie, never a URL).

const KEY = "pleasant-cove-console-token";

/** The signed-in token, kept per tab. */
export const session = {
  get token() {
    return sessionStorage.getItem(KEY);
  },
  set(token) {
    sessionStorage.setItem(KEY, token);
  },
  clear() {
    sessionStorage.removeItem(KEY);
  },
};

/** A refused or failed call: `status` and the problem+json body (code, title, detail). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.title ?? `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = problem?.code ?? `http-${status}`;
    this.problem = problem;
  }
}

/**
 * Calls the API. POST/PATCH/DELETE get a fresh Idempotency-Key (the gateway
 * stores the first answer, so a double click cannot act twice with one key
 * and a retried request is safe).
 */
export async function api(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${session.token ?? ""}` };
  if (method !== "GET") headers["Idempotency-Key"] = crypto.randomUUID();
  // The gateway takes only JSON bodies on POST/PUT/PATCH, an empty object included.
  const sends = body !== undefined || ["POST", "PUT", "PATCH"].includes(method);
  if (sends) headers["Content-Type"] = "application/json";
  const res = await fetch(path, {
    method,
    headers,
    body: sends ? JSON.stringify(body ?? {}) : undefined,
    cache: "no-store",
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { title: text.slice(0, 200) };
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** Calls `api` and answers `{data}` or `{error}` (for views that show what failed). */
export async function load(path) {
  try {
    return { data: await api("GET", path) };
  } catch (error) {
    return { error };
  }
}

/** The one-click development sign-in (offered only when the edge runs in development or test). */
export async function devSignIn(role) {
  const res = await fetch("/console/dev-sign-in", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ role }),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data.token;
}
