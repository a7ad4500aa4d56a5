/**
 * Who may call what: a default-deny rule table, kept as data so the README
 * can show exactly what the code enforces ({@linkcode renderPolicyTable}).
 *
 * A request is allowed when some grant of a route group whose paths match
 * lists the method and the principal; nothing else is. Grants only add
 * access, there are no deny rules to order.
 *
 * Service accounts are granted by NAME only (`services`), never through a
 * `roles` claim: what a service may do is reviewed here, in code, not decided
 * by whoever mints its tokens. Roles apply to users.
 *
 * @module
 */
import { type Principal, type Role, ROLES } from "./principal.ts";

/** Methods a grant can list. `HEAD` is checked as `GET` (it is GET without a body). */
export const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
/** An HTTP method a grant can list. */
export type Method = (typeof METHODS)[number];

/** Who a grant is for; a principal matching any field is allowed. */
export interface Allow {
  /** Service accounts by `sub`, e.g. `sa:minerva`. */
  services?: readonly `sa:${string}`[];
  /** Users holding any of these roles. */
  roles?: readonly Role[];
  /** Every authenticated principal. */
  anyPrincipal?: true;
}

/** Some methods for some principals. */
export interface Grant {
  methods: readonly Method[];
  allow: Allow;
}

/**
 * A named set of paths and its grants. A path is exact (`/v1/tasks`) or ends
 * in `/*`, which matches everything below it but not the path itself
 * (`/v1/tasks/*` matches `/v1/tasks/t1`, not `/v1/tasks`).
 */
export interface RouteGroup {
  group: string;
  paths: readonly string[];
  grants: readonly Grant[];
}

/** The rule table. */
export type Policy = readonly RouteGroup[];

const CONTROL_PATHS = [
  // `/v1/tasks` itself is the "tasks" group below: its GET lists every
  // caller's tasks, which the control API's readers may not all see.
  "/v1/tasks/*",
  "/v1/leads",
  "/v1/leads/*",
  "/v1/outreach/*",
  "/v1/appointments",
  "/v1/appointments/*",
  "/v1/scrape-jobs",
] as const;

/**
 * The gateway's access policy. The seed's service-mesh rule ("control API:
 * sa:api-gateway and sa:minerva, GET and POST") lives here as app policy.
 */
export const ACCESS_POLICY: Policy = [
  {
    group: "self",
    paths: ["/v1/me"],
    grants: [{ methods: ["GET"], allow: { anyPrincipal: true } }],
  },
  {
    group: "control",
    paths: CONTROL_PATHS,
    grants: [
      { methods: ["GET", "POST"], allow: { services: ["sa:api-gateway", "sa:minerva"] } },
      { methods: ["GET", "POST", "PATCH"], allow: { roles: ["admin", "operator"] } },
      { methods: ["GET"], allow: { roles: ["viewer"] } },
    ],
  },
  {
    // Erasure requests (DELETE /v1/leads/{id}: the lead and its personal
    // data, docs/security.md "Data erasure") are irreversible: admins only.
    group: "erasure",
    paths: ["/v1/leads/*"],
    grants: [{ methods: ["DELETE"], allow: { roles: ["admin"] } }],
  },
  {
    // Enqueue (POST) as the control API; the listing (GET: every caller's
    // tasks, with who enqueued them for admins) is admin/operator only.
    // `/v1/tasks/*` (a task's status, the type catalog) stays in "control".
    group: "tasks",
    paths: ["/v1/tasks"],
    grants: [
      { methods: ["POST"], allow: { services: ["sa:api-gateway", "sa:minerva"] } },
      { methods: ["GET", "POST"], allow: { roles: ["admin", "operator"] } },
    ],
  },
  {
    group: "admin",
    paths: [
      "/v1/admin",
      "/v1/admin/*",
      "/v1/dlq",
      "/v1/dlq/*",
      "/v1/breakers",
      "/v1/breakers/*",
      "/v1/ws/clients",
      "/v1/ws/broadcast",
    ],
    grants: [{ methods: METHODS, allow: { roles: ["admin"] } }],
  },
  {
    // Breaker states and the SLO status (no data, only health): every
    // dashboard role watches them in the console; changing a breaker stays
    // with the admin group above.
    group: "status",
    paths: ["/v1/breakers", "/v1/slo"],
    grants: [{ methods: ["GET"], allow: { roles: ["admin", "operator", "viewer"] } }],
  },
  {
    // The live feed (GET /v1/ws authenticates itself; each topic has its own
    // rule in shared/ws/topics.ts) and its protocol's JSON Schema.
    group: "live",
    paths: ["/v1/ws", "/v1/ws/schema"],
    grants: [{ methods: ["GET"], allow: { anyPrincipal: true } }],
  },
  {
    // Read-only operational state that operators need to see (nothing here changes it).
    group: "operations",
    paths: ["/v1/schedules", "/v1/queue"],
    grants: [{ methods: ["GET"], allow: { roles: ["admin", "operator"] } }],
  },
  {
    // Aggregates only (no lead details): every dashboard role and Minerva.
    group: "analytics",
    paths: ["/v1/analytics/*"],
    grants: [
      { methods: ["GET"], allow: { services: ["sa:minerva"] } },
      { methods: ["GET"], allow: { roles: ["admin", "operator", "viewer"] } },
    ],
  },
  {
    // Event ingest: webhooks relayed by the API gateway, Minerva, operators.
    // A group of its own, so that readers of analytics gain nothing here.
    group: "ingest",
    paths: ["/v1/events"],
    grants: [
      { methods: ["POST"], allow: { services: ["sa:api-gateway", "sa:minerva"] } },
      { methods: ["POST"], allow: { roles: ["admin", "operator"] } },
    ],
  },
  {
    // The lead-scoring model registry (edge/routes/models.ts). Reading runs and
    // metrics helps every dashboard role trust the score (no lead data in
    // them); training, activation and rollback change every lead's score:
    // admins only.
    group: "models",
    paths: ["/v1/models", "/v1/models/*"],
    grants: [
      { methods: ["GET"], allow: { roles: ["admin", "operator", "viewer"] } },
      { methods: ["POST"], allow: { roles: ["admin"] } },
    ],
  },
];

/** An authorization outcome; `group` is the matched route group (for logs), if any. */
export interface Decision {
  allowed: boolean;
  group: string | null;
  /**
   * On a denial, the permission the caller lacks, e.g.
   * `PATCH /v1/leads/*` (the method and the first matching path pattern).
   */
  permission?: string;
  /** On a denial, who holds that permission, in words (`nobody` when no grant lists the method). */
  grantedTo?: string;
}

/** Decides requests against a validated policy. */
export type Authorizer = (principal: Principal, method: string, path: string) => Decision;

const PATH_PATTERN = /^(\/[A-Za-z0-9._~-]+)+(\/\*)?$/;

function pathMatches(pattern: string, path: string): boolean {
  if (!pattern.endsWith("/*")) return path === pattern;
  const prefix = pattern.slice(0, -1); // keeps the trailing "/"
  return path.length > prefix.length && path.startsWith(prefix);
}

function allows(allow: Allow, principal: Principal): boolean {
  if (allow.anyPrincipal) return true;
  if (principal.kind === "service") return allow.services?.includes(principal.sub) ?? false;
  return principal.roles.some((r) => allow.roles?.includes(r));
}

/** Checks `policy` for mistakes that would silently deny or allow; throws a TypeError listing them. */
export function validatePolicy(policy: Policy): void {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const g of policy) {
    const where = `group "${g.group}"`;
    if (!/^[a-z][a-z0-9_-]*$/.test(g.group)) problems.push(`${where}: invalid name`);
    if (names.has(g.group)) problems.push(`${where}: appears twice`);
    names.add(g.group);
    if (g.paths.length === 0) problems.push(`${where}: no paths`);
    for (const p of g.paths) {
      // ".." or "." segments never reach the router (URLs are normalised), so a
      // pattern containing them would never match.
      if (!PATH_PATTERN.test(p) || /\/\.\.?(\/|$)/.test(p)) {
        problems.push(`${where}: path "${p}" must be /segments with an optional trailing /*`);
      }
    }
    if (g.grants.length === 0) problems.push(`${where}: no grants`);
    for (const [i, grant] of g.grants.entries()) {
      const w = `${where} grant ${i + 1}`;
      if (grant.methods.length === 0) problems.push(`${w}: no methods`);
      for (const m of grant.methods) {
        if (!(METHODS as readonly string[]).includes(m)) problems.push(`${w}: unknown method ${m}`);
      }
      const { services = [], roles = [], anyPrincipal } = grant.allow;
      if (!anyPrincipal && services.length === 0 && roles.length === 0) {
        problems.push(`${w}: allows nobody`);
      }
      for (const s of services) {
        if (!/^sa:[A-Za-z0-9._-]+$/.test(s)) problems.push(`${w}: "${s}" is not sa:<name>`);
      }
      for (const r of roles) {
        if (!(ROLES as readonly string[]).includes(r)) problems.push(`${w}: unknown role "${r}"`);
      }
    }
  }
  if (problems.length > 0) {
    throw new TypeError(`Invalid access policy:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

/** Validates `policy` once and returns the decision function. */
export function compilePolicy(policy: Policy): Authorizer {
  validatePolicy(policy);
  const groups = policy.map((g) => ({ ...g, paths: [...g.paths], grants: [...g.grants] }));
  return function decide(principal, method, path) {
    const m = method === "HEAD" ? "GET" : method;
    let matched: string | null = null;
    let permission: string | undefined;
    const holders: string[] = [];
    for (const g of groups) {
      const pattern = g.paths.find((p) => pathMatches(p, path));
      if (pattern === undefined) continue;
      matched ??= g.group;
      permission ??= `${m} ${pattern}`;
      for (const grant of g.grants) {
        if (!(grant.methods as readonly string[]).includes(m)) continue;
        if (allows(grant.allow, principal)) return { allowed: true, group: g.group };
        holders.push(who(grant.allow));
      }
    }
    return {
      allowed: false,
      group: matched,
      permission: permission ?? `${m} ${path}`,
      grantedTo: holders.length > 0 ? holders.join("; ") : "nobody",
    };
  };
}

function code(items: readonly string[]): string {
  return items.map((i) => `\`${i}\``).join(", ");
}

function who(allow: Allow): string {
  const parts: string[] = [];
  if (allow.anyPrincipal) parts.push("any authenticated caller");
  if (allow.services?.length) parts.push(`services ${code(allow.services)}`);
  if (allow.roles?.length) {
    parts.push(`users with role ${allow.roles.map((r) => `\`${r}\``).join(" or ")}`);
  }
  return parts.join("; ");
}

/** The policy as a Markdown table (one row per grant) for the README. */
export function renderPolicyTable(policy: Policy = ACCESS_POLICY): string {
  const rows = policy.flatMap((g) =>
    g.grants.map((grant) =>
      `| ${g.group} | ${code(g.paths)} | ${grant.methods.join(", ")} | ${who(grant.allow)} |`
    )
  );
  return [
    "| group | paths | methods | allowed |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    "Anything not listed is denied (403). `HEAD` is checked as `GET`; a path ending in `/*`" +
    " matches everything below it, not the path itself.",
  ].join("\n");
}
