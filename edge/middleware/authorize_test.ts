import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import { ACCESS_POLICY } from "../auth/policy.ts";
import { authApp, claims, signHs256, testAuth } from "../../testing/auth.ts";
import { fakeClock } from "../../testing/clock.ts";
import { memoryLog } from "../../testing/log.ts";
import { createVerifier } from "../auth/verify.ts";
import { authorize } from "./authorize.ts";

const clock = fakeClock();
const { log, lines } = memoryLog();
const app = authApp(createVerifier(testAuth(), { log, now: clock.now }), log, {
  policy: ACCESS_POLICY,
});

const mint = (sub: string, roles: string[] = []) => signHs256(claims(clock.now(), { sub, roles }));
const TOKENS: Record<string, string | null> = {
  anonymous: null,
  "sa:minerva": await mint("sa:minerva"),
  "sa:api-gateway": await mint("sa:api-gateway"),
  "sa:reporting": await mint("sa:reporting"),
  // Roles in a service token are refused at verification (401): services are
  // allowed by name only, never by role.
  "sa:minerva+admin-claim": await mint("sa:minerva", ["admin"]),
  admin: await mint("alice", ["admin"]),
  operator: await mint("olga", ["operator"]),
  viewer: await mint("victor", ["viewer"]),
  "no roles": await mint("nora"),
  "viewer+operator": await mint("vo", ["viewer", "operator"]),
};

type Row = [principal: string, method: string, path: string, status: 200 | 401 | 403];

const MATRIX: Row[] = [
  // Control API: the two services with GET/POST, nothing else.
  ["sa:minerva", "GET", "/v1/tasks/t1", 200],
  ["sa:minerva", "POST", "/v1/tasks", 200],
  ["sa:minerva", "GET", "/v1/leads/l1", 200],
  ["sa:minerva", "POST", "/v1/leads", 200],
  ["sa:minerva", "PATCH", "/v1/tasks/t1", 403],
  ["sa:minerva", "DELETE", "/v1/tasks/t1", 403],
  ["sa:minerva", "PUT", "/v1/tasks/t1", 403],
  ["sa:api-gateway", "GET", "/v1/tasks/t1", 200],
  ["sa:api-gateway", "POST", "/v1/tasks", 200],
  ["sa:api-gateway", "DELETE", "/v1/leads/l1", 403],
  ["sa:reporting", "GET", "/v1/tasks/t1", 403],
  ["sa:minerva+admin-claim", "GET", "/v1/admin/stats", 401],
  ["sa:minerva+admin-claim", "DELETE", "/v1/tasks/t1", 401],
  // Users on the control API.
  ["operator", "GET", "/v1/tasks/t1", 200],
  ["operator", "POST", "/v1/tasks", 200],
  ["operator", "PATCH", "/v1/leads/l1", 200],
  ["operator", "DELETE", "/v1/leads/l1", 403],
  // Erasure (DELETE /v1/leads/{id}) is the admins' alone; the history reads like the lead.
  ["admin", "DELETE", "/v1/leads/l1", 200],
  ["viewer", "DELETE", "/v1/leads/l1", 403],
  ["sa:minerva", "DELETE", "/v1/leads/l1", 403],
  ["admin", "DELETE", "/v1/leads", 403],
  ["viewer", "GET", "/v1/leads/l1/history", 200],
  ["sa:minerva", "GET", "/v1/leads/l1/history", 200],
  ["admin", "PATCH", "/v1/tasks/t1", 200],
  ["viewer", "GET", "/v1/tasks/t1", 200],
  ["viewer", "HEAD", "/v1/tasks/t1", 200],
  ["viewer", "POST", "/v1/tasks", 403],
  ["viewer", "PATCH", "/v1/tasks/t1", 403],
  ["viewer+operator", "POST", "/v1/tasks", 200],
  ["no roles", "GET", "/v1/tasks/t1", 403],
  // Admin routes: role admin only, any method.
  ["admin", "GET", "/v1/admin/stats", 200],
  ["admin", "DELETE", "/v1/dlq/d1", 200],
  ["admin", "POST", "/v1/dlq", 200],
  ["operator", "GET", "/v1/admin/stats", 403],
  ["viewer", "GET", "/v1/dlq", 403],
  ["admin", "POST", "/v1/breakers/email/force-open", 200],
  // Reading breakers is the status group (operators and viewers watch them in
  // the console); changing one stays admin-only.
  ["operator", "GET", "/v1/breakers", 200],
  ["viewer", "GET", "/v1/breakers", 200],
  ["operator", "POST", "/v1/breakers/email/force-open", 403],
  ["viewer", "POST", "/v1/breakers/email/reset", 403],
  ["no roles", "GET", "/v1/breakers", 403],
  ["sa:minerva", "POST", "/v1/breakers/email/reset", 403],
  ["sa:minerva", "GET", "/v1/dlq", 403],
  ["sa:api-gateway", "POST", "/v1/admin/replay", 403],
  // Self: anyone authenticated may read /v1/me.
  ["no roles", "GET", "/v1/me", 200],
  ["sa:reporting", "GET", "/v1/me", 200],
  ["viewer", "POST", "/v1/me", 403],
  // Default deny: unlisted paths, near misses, other spellings.
  ["admin", "GET", "/v1/unknown", 403],
  ["admin", "GET", "/v1/tasks/", 403],
  ["admin", "GET", "/v1/administrator", 403],
  ["sa:minerva", "GET", "/v1/tasks/../admin/stats", 403],
  ["sa:minerva", "GET", "/v1/tasks/%2e%2e/admin/stats", 403],
  ["admin", "OPTIONS", "/v1/tasks", 403],
  // Authentication comes first: no token is 401 even where everyone would be denied.
  ["anonymous", "GET", "/v1/tasks/t1", 401],
  ["anonymous", "GET", "/v1/admin/stats", 401],
  ["anonymous", "DELETE", "/v1/unknown", 401],
];

Deno.test("authorization matrix: principal × method × path → 200 / 401 / 403", async (t) => {
  for (const [who, method, path, status] of MATRIX) {
    await t.step(`${who} ${method} ${path} → ${status}`, async () => {
      const token = TOKENS[who];
      assert.notEqual(token, undefined, `no token for ${who}`);
      const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      const res = await app.request(`http://localhost${path}`, { method, headers });
      const body = method === "HEAD" ? "" : await res.text();
      assert.equal(res.status, status, body);
      if (status === 403) {
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        assert.equal(JSON.parse(body).code, "forbidden");
      }
    });
  }
});

Deno.test("a denial is logged with the principal and the matched route group", async () => {
  lines.length = 0;
  const res = await app.request("/v1/dlq/d1", {
    method: "DELETE",
    headers: { Authorization: `Bearer ${TOKENS.operator}` },
  });
  assert.equal(res.status, 403);
  await res.body?.cancel();
  const denied = lines.find((l) => l.msg === "authorization denied");
  assert.equal(denied?.["user.id"], "olga");
  assert.equal(denied?.group, "admin");
  assert.equal(denied?.method, "DELETE");
});

Deno.test("other spellings of a protected path never slip past authentication or policy", async () => {
  // Unauthenticated, none of them is served; with an admin token, the ones that
  // reach /v1/* are still denied because no rule matches them exactly.
  const cases: [path: string, anonymous: number, admin: number][] = [
    ["/V1/ADMIN/stats", 404, 404],
    ["//v1/admin/stats", 404, 404],
    ["/v1//admin/stats", 401, 403],
    ["/v1/admin%2Fstats", 401, 403],
  ];
  for (const [path, anonymous, admin] of cases) {
    for (const [token, status] of [[null, anonymous], [TOKENS.admin, admin]] as const) {
      const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      const res = await app.request(`http://localhost${path}`, { headers });
      await res.body?.cancel();
      assert.equal(res.status, status, `${path} ${token ? "admin" : "anonymous"}`);
    }
  }
});

Deno.test("authorize() without authenticate() in front fails closed with a 500", async () => {
  const bare = new Hono<AppEnv>();
  bare.onError((_err, c) => c.text("internal", 500));
  bare.use("/v1/*", authorize());
  bare.get("/v1/me", (c) => c.text("ok"));
  const res = await bare.request("/v1/me");
  assert.equal(res.status, 500);
  await res.body?.cancel();
});
