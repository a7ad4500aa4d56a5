/**
 * A small evaluator of Istio ALLOW AuthorizationPolicies, as the Istio
 * reference describes them: a workload with no ALLOW policy admits
 * everything; otherwise a request is admitted when some rule of some policy
 * selecting the workload matches. Rules are ORed; inside a rule `from`, `to`
 * and `when` are ANDed and an absent one matches anything; values inside one
 * list are ORed; strings match exactly, by prefix (`abc*`) or by suffix
 * (`*abc`). Enough to test what deploy.yaml admits, offline.
 *
 * @module
 */
import type { Doc } from "./load.ts";

/** One request as the edge's sidecar sees it. */
export interface MeshRequest {
  /** Peer principal from the mTLS certificate, e.g. cluster.local/ns/x/sa/y. */
  principal: string;
  method: string;
  port: number;
  path: string;
  /** Labels of the receiving workload. */
  workload: Record<string, string>;
}

function matches(patterns: readonly string[] | undefined, value: string): boolean {
  if (patterns === undefined) return true;
  return patterns.some((p) =>
    p === "*" || p === value || (p.endsWith("*") && value.startsWith(p.slice(0, -1))) ||
    (p.startsWith("*") && value.endsWith(p.slice(1)))
  );
}

// deno-lint-ignore no-explicit-any
function ruleMatches(rule: any, req: MeshRequest): boolean {
  if (rule.when !== undefined) return false; // no policy here uses conditions
  const fromOk = rule.from === undefined ||
    rule.from.some((f: Doc) => matches(f.source?.principals, req.principal));
  const toOk = rule.to === undefined || rule.to.some((t: Doc) => {
    const op = t.operation ?? {};
    return matches(op.methods, req.method) && matches(op.ports, String(req.port)) &&
      matches(op.paths, req.path);
  });
  return fromOk && toOk;
}

/** Whether the ALLOW policies among `docs` admit `req` (DENY/CUSTOM policies are refused). */
export function istioAllows(docs: readonly Doc[], req: MeshRequest): boolean {
  const policies = docs.filter((d) => d.kind === "AuthorizationPolicy").filter((p) => {
    const selector: Record<string, string> | undefined = p.spec?.selector?.matchLabels;
    return !selector || Object.entries(selector).every(([k, v]) => req.workload[k] === v);
  });
  for (const p of policies) {
    if ((p.spec?.action ?? "ALLOW") !== "ALLOW") {
      throw new TypeError(`${p.metadata.name}: only ALLOW policies are evaluated`);
    }
  }
  if (policies.length === 0) return true;
  return policies.some((p) => (p.spec?.rules ?? []).some((r: Doc) => ruleMatches(r, req)));
}

/**
 * ALLOW rules that name callers but no operations, or operations but no
 * callers: the seed's shape. Because rules are ORed, a `to`-only rule admits
 * every caller (and a `from`-only rule every operation).
 */
export function halfRules(docs: readonly Doc[]): string[] {
  return docs.filter((d) => d.kind === "AuthorizationPolicy").flatMap((p) =>
    (p.spec?.rules ?? []).flatMap((r: Doc, i: number) =>
      r.from === undefined || r.to === undefined ? [`${p.metadata.name} rule ${i + 1}`] : []
    )
  );
}
