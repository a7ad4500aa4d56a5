import assert from "node:assert/strict";
import { ACCESS_POLICY, compilePolicy, type Policy, renderPolicyTable } from "./policy.ts";
import type { Principal } from "./principal.ts";

const minerva: Principal = { kind: "service", sub: "sa:minerva", name: "minerva", roles: [] };
const viewer: Principal = { kind: "user", sub: "v", roles: ["viewer"] };

Deno.test("the shipped policy is valid and decides with the matched group", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  assert.deepEqual(decide(minerva, "POST", "/v1/tasks"), { allowed: true, group: "tasks" });
  assert.deepEqual(decide(minerva, "DELETE", "/v1/tasks/t1"), {
    allowed: false,
    group: "control",
    permission: "DELETE /v1/tasks/*",
    grantedTo: "nobody",
  });
  assert.deepEqual(decide(viewer, "HEAD", "/v1/leads/l1"), { allowed: true, group: "control" });
  assert.deepEqual(decide(viewer, "GET", "/v1/nothing"), {
    allowed: false,
    group: null,
    permission: "GET /v1/nothing",
    grantedTo: "nobody",
  });
});

Deno.test("the task listing is for admins and operators; a task's status and the type catalog for every control reader", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  const operator: Principal = { kind: "user", sub: "o", roles: ["operator"] };
  const admin: Principal = { kind: "user", sub: "a", roles: ["admin"] };
  const gateway: Principal = {
    kind: "service",
    sub: "sa:api-gateway",
    name: "api-gateway",
    roles: [],
  };
  const cases: [Principal, string, string, boolean][] = [
    [admin, "GET", "/v1/tasks", true],
    [operator, "GET", "/v1/tasks", true],
    [viewer, "GET", "/v1/tasks", false],
    [minerva, "GET", "/v1/tasks", false],
    [gateway, "GET", "/v1/tasks", false],
    // Enqueueing is unchanged: services, admins and operators.
    [minerva, "POST", "/v1/tasks", true],
    [gateway, "POST", "/v1/tasks", true],
    [operator, "POST", "/v1/tasks", true],
    [viewer, "POST", "/v1/tasks", false],
    // The catalog filters itself per caller (public types it may enqueue).
    [viewer, "GET", "/v1/tasks/types", true],
    [minerva, "GET", "/v1/tasks/types", true],
    [operator, "GET", "/v1/tasks/types", true],
    [viewer, "GET", "/v1/tasks/t1", true],
  ];
  for (const [p, method, path, allowed] of cases) {
    assert.equal(decide(p, method, path).allowed, allowed, `${p.sub} ${method} ${path}`);
  }
  assert.deepEqual(decide(viewer, "GET", "/v1/tasks"), {
    allowed: false,
    group: "tasks",
    permission: "GET /v1/tasks",
    grantedTo: "users with role `admin` or `operator`",
  });
});

Deno.test("a denial names the missing permission and who holds it", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  assert.deepEqual(decide(minerva, "PATCH", "/v1/leads/l1"), {
    allowed: false,
    group: "control",
    permission: "PATCH /v1/leads/*",
    grantedTo: "users with role `admin` or `operator`",
  });
});

Deno.test("lead actions: services and operators POST them; reopening is for admins", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  const operator: Principal = { kind: "user", sub: "o", roles: ["operator"] };
  const admin: Principal = { kind: "user", sub: "a", roles: ["admin"] };
  const cases: [Principal, string, string, boolean][] = [
    [minerva, "POST", "/v1/leads/l1/transitions", true],
    [minerva, "POST", "/v1/leads/l1/notes", true],
    [operator, "POST", "/v1/leads/l1/transitions", true],
    [viewer, "POST", "/v1/leads/l1/transitions", false],
    [viewer, "POST", "/v1/leads/l1/notes", false],
    [minerva, "PATCH", "/v1/leads/l1", false],
    [minerva, "POST", "/v1/admin/leads/l1/reopen", false],
    [operator, "POST", "/v1/admin/leads/l1/reopen", false],
    [admin, "POST", "/v1/admin/leads/l1/reopen", true],
    // The history reads like the lead.
    [minerva, "GET", "/v1/leads/l1/history", true],
    [viewer, "GET", "/v1/leads/l1/history", true],
    [operator, "GET", "/v1/leads/l1/history", true],
    // Erasure (DELETE /v1/leads/{id}) is irreversible: admins only.
    [admin, "DELETE", "/v1/leads/l1", true],
    [operator, "DELETE", "/v1/leads/l1", false],
    [viewer, "DELETE", "/v1/leads/l1", false],
    [minerva, "DELETE", "/v1/leads/l1", false],
  ];
  for (const [who, method, path, allowed] of cases) {
    assert.equal(decide(who, method, path).allowed, allowed, `${who.sub} ${method} ${path}`);
  }
});

Deno.test("analytics reads are for dashboards and Minerva; ingest for services and operators", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  const gateway: Principal = {
    kind: "service",
    sub: "sa:api-gateway",
    name: "api-gateway",
    roles: [],
  };
  const operator: Principal = { kind: "user", sub: "o", roles: ["operator"] };
  const metrics = "/v1/analytics/lead-metrics";
  const cases: [Principal, string, string, boolean][] = [
    [minerva, "GET", metrics, true],
    [viewer, "GET", metrics, true],
    [operator, "HEAD", metrics, true],
    [gateway, "GET", metrics, false],
    [viewer, "POST", metrics, false],
    [minerva, "POST", "/v1/events", true],
    [gateway, "POST", "/v1/events", true],
    [operator, "POST", "/v1/events", true],
    [viewer, "POST", "/v1/events", false],
    [viewer, "GET", "/v1/events", false],
    [minerva, "GET", "/v1/analytics", false],
  ];
  for (const [who, method, path, allowed] of cases) {
    assert.equal(decide(who, method, path).allowed, allowed, `${who.sub} ${method} ${path}`);
  }
});

Deno.test("a /* pattern matches below the path, not the path itself or a longer name", () => {
  const decide = compilePolicy([
    {
      group: "g",
      paths: ["/v1/a/*"],
      grants: [{ methods: ["GET"], allow: { anyPrincipal: true } }],
    },
  ]);
  assert.equal(decide(viewer, "GET", "/v1/a/x").allowed, true);
  assert.equal(decide(viewer, "GET", "/v1/a/x/y").allowed, true);
  assert.equal(decide(viewer, "GET", "/v1/a").allowed, false);
  assert.equal(decide(viewer, "GET", "/v1/a/").allowed, false);
  assert.equal(decide(viewer, "GET", "/v1/ab").allowed, false);
});

Deno.test("policy mistakes are all reported at construction", () => {
  const bad = [
    { group: "Bad Name", paths: [], grants: [] },
    {
      group: "dup",
      paths: ["/v1/x*", "v1/y", "/v1/../admin/*", "/v1/ok/*"],
      grants: [
        { methods: [], allow: {} },
        { methods: ["TRACE"], allow: { roles: ["root"], services: ["minerva"] } },
      ],
    },
    { group: "dup", paths: ["/v1/z"], grants: [{ methods: ["GET"], allow: { roles: ["admin"] } }] },
  ] as unknown as Policy;
  const expected = [
    'group "Bad Name": invalid name',
    'group "Bad Name": no paths',
    'group "Bad Name": no grants',
    'path "/v1/x*"',
    'path "v1/y"',
    'path "/v1/../admin/*"',
    "grant 1: no methods",
    "grant 1: allows nobody",
    "grant 2: unknown method TRACE",
    'grant 2: unknown role "root"',
    'grant 2: "minerva" is not sa:<name>',
    'group "dup": appears twice',
  ];
  assert.throws(() => compilePolicy(bad), (err: unknown) => {
    assert.ok(err instanceof TypeError);
    for (const e of expected) assert.ok(err.message.includes(e), `no "${e}" in:\n${err.message}`);
    assert.ok(!err.message.includes("/v1/ok/*"), "a valid path was reported");
    return true;
  });
});

Deno.test("renderPolicyTable shows one row per grant, ready for the README", () => {
  assert.equal(
    renderPolicyTable(),
    [
      "| group | paths | methods | allowed |",
      "| --- | --- | --- | --- |",
      "| self | `/v1/me` | GET | any authenticated caller |",
      "| control | `/v1/tasks/*`, `/v1/leads`, `/v1/leads/*`, `/v1/outreach/*`, `/v1/appointments`, `/v1/appointments/*`, `/v1/scrape-jobs` | GET, POST | services `sa:api-gateway`, `sa:minerva` |",
      "| control | `/v1/tasks/*`, `/v1/leads`, `/v1/leads/*`, `/v1/outreach/*`, `/v1/appointments`, `/v1/appointments/*`, `/v1/scrape-jobs` | GET, POST, PATCH | users with role `admin` or `operator` |",
      "| control | `/v1/tasks/*`, `/v1/leads`, `/v1/leads/*`, `/v1/outreach/*`, `/v1/appointments`, `/v1/appointments/*`, `/v1/scrape-jobs` | GET | users with role `viewer` |",
      "| erasure | `/v1/leads/*` | DELETE | users with role `admin` |",
      "| tasks | `/v1/tasks` | POST | services `sa:api-gateway`, `sa:minerva` |",
      "| tasks | `/v1/tasks` | GET, POST | users with role `admin` or `operator` |",
      "| admin | `/v1/admin`, `/v1/admin/*`, `/v1/dlq`, `/v1/dlq/*`, `/v1/breakers`, `/v1/breakers/*`, `/v1/ws/clients`, `/v1/ws/broadcast` | GET, POST, PUT, PATCH, DELETE | users with role `admin` |",
      "| status | `/v1/breakers`, `/v1/slo` | GET | users with role `admin` or `operator` or `viewer` |",
      "| live | `/v1/ws`, `/v1/ws/schema` | GET | any authenticated caller |",
      "| operations | `/v1/schedules`, `/v1/queue` | GET | users with role `admin` or `operator` |",
      "| analytics | `/v1/analytics/*` | GET | services `sa:minerva` |",
      "| analytics | `/v1/analytics/*` | GET | users with role `admin` or `operator` or `viewer` |",
      "| ingest | `/v1/events` | POST | services `sa:api-gateway`, `sa:minerva` |",
      "| ingest | `/v1/events` | POST | users with role `admin` or `operator` |",
      "| models | `/v1/models`, `/v1/models/*` | GET | users with role `admin` or `operator` or `viewer` |",
      "| models | `/v1/models`, `/v1/models/*` | POST | users with role `admin` |",
      "",
      "Anything not listed is denied (403). `HEAD` is checked as `GET`; a path ending in `/*` matches everything below it, not the path itself.",
    ].join("\n"),
  );
});

Deno.test("outreach: templates, sent emails and appointments for control readers; changes for those who book; suppressions for admins only", () => {
  const decide = compilePolicy(ACCESS_POLICY);
  const operator: Principal = { kind: "user", sub: "o", roles: ["operator"] };
  const admin: Principal = { kind: "user", sub: "a", roles: ["admin"] };
  const readers = [minerva, operator, admin, viewer];
  const cases: [Principal, string, string, boolean][] = [
    ...readers.flatMap((p): [Principal, string, string, boolean][] => [
      [p, "GET", "/v1/outreach/templates", true],
      [p, "GET", "/v1/outreach/templates/intro", true],
      [p, "GET", "/v1/outreach/emails", true],
      [p, "GET", "/v1/outreach/emails/e1", true],
      [p, "GET", "/v1/leads/l1/emails", true],
    ]),
    ...[minerva, operator, viewer].flatMap((p): [Principal, string, string, boolean][] => [
      [p, "GET", "/v1/admin/suppressions", false],
      [p, "GET", "/v1/admin/suppressions/changes", false],
      [p, "POST", "/v1/admin/suppressions", false],
      [p, "POST", "/v1/admin/suppressions/remove", false],
    ]),
    [admin, "GET", "/v1/admin/suppressions", true],
    [admin, "GET", "/v1/admin/suppressions/changes", true],
    [admin, "POST", "/v1/admin/suppressions", true],
    [admin, "POST", "/v1/admin/suppressions/remove", true],
    // Appointments: read by every control reader; cancelled and moved by those who book.
    ...readers.map((p): [Principal, string, string, boolean] => [
      p,
      "GET",
      "/v1/appointments/a1",
      true,
    ]),
    ...[minerva, operator, admin].flatMap((p): [Principal, string, string, boolean][] => [
      [p, "POST", "/v1/appointments/a1/cancel", true],
      [p, "POST", "/v1/appointments/a1/reschedule", true],
    ]),
    [viewer, "POST", "/v1/appointments/a1/cancel", false],
    [viewer, "POST", "/v1/appointments/a1/reschedule", false],
  ];
  for (const [who, method, path, allowed] of cases) {
    assert.equal(decide(who, method, path).allowed, allowed, `${who.sub} ${method} ${path}`);
  }
});
