/**
 * Istio (mutual TLS, authorization, traffic policy) and the NetworkPolicies
 * below it. The service grants of the edge's policy table
 * (edge/auth/policy.ts) become mesh rules: a service may only open a
 * connection for what the JWT policy would let it do anyway.
 *
 * @module
 */
import {
  AuthorizationPolicy,
  PeerAuthentication,
} from "@kubernetes-models/istio/security.istio.io/v1";
import { DestinationRule } from "@kubernetes-models/istio/networking.istio.io/v1";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { ACCESS_POLICY, type RouteGroup } from "../../edge/auth/policy.ts";
import {
  INGRESS_GATEWAY_PRINCIPAL,
  labelsOf,
  type Manifest,
  NAMESPACE,
  PORTS,
  principalOf,
  PROMETHEUS_PRINCIPAL,
} from "./settings.ts";

const EDGE_SELECTOR: Selector = { matchLabels: { "app.kubernetes.io/component": "edge" } };

type Selector = { matchLabels: Record<string, string> };
type Rules = NonNullable<NonNullable<AuthorizationPolicy["spec"]>["rules"]>;

/**
 * One rule per service grant: `from` the grant's principals AND `to` its
 * methods on the group's paths. A rule with only `from` or only `to` would
 * admit every caller for the other half (Istio ORs rules).
 */
function serviceRules(group: RouteGroup): Rules {
  return group.grants.flatMap((grant) =>
    grant.allow.services
      ? [{
        from: [{
          source: { principals: grant.allow.services.map((s) => principalOf(s.slice(3))) },
        }],
        to: [{
          operation: {
            methods: [...grant.methods],
            ports: [String(PORTS.edge)],
            paths: [...group.paths],
          },
        }],
      }]
      : []
  );
}

function allow(name: string, rules: Rules, selector = EDGE_SELECTOR) {
  return new AuthorizationPolicy({
    metadata: { name, namespace: NAMESPACE },
    spec: { selector, action: "ALLOW", rules },
  });
}

/** PeerAuthentication, AuthorizationPolicies and the edge's DestinationRule. */
export function mesh(): Manifest[] {
  const control = ACCESS_POLICY.find((g) => g.group === "control");
  if (!control) throw new TypeError("edge/auth/policy.ts has no control group");
  const others = ACCESS_POLICY.filter((g) => g !== control).flatMap(serviceRules);
  return [
    {
      comment: " Istio: mutual TLS for every workload of the namespace.",
      resource: new PeerAuthentication({
        metadata: { name: "default", namespace: NAMESPACE },
        spec: { mtls: { mode: "STRICT" } },
      }),
    },
    {
      comment: " Default deny: an ALLOW policy without rules matches nothing, so only what the\n" +
        " policies below allow reaches a workload of the namespace.",
      resource: new AuthorizationPolicy({
        metadata: { name: "allow-nothing", namespace: NAMESPACE },
        spec: {},
      }),
    },
    {
      comment:
        " The control API: ONE rule, so the caller must be api-gateway or minerva AND use\n" +
        " GET or POST AND address a control path. The seed listed `from` and `to` as two\n" +
        " rules, which Istio ORs: any caller could GET/POST. manifest_test.ts guards this.",
      resource: allow("edge-control-api", serviceRules(control)),
    },
    {
      comment: " The other grants edge/auth/policy.ts gives services by name.",
      resource: allow("edge-service-grants", others),
    },
    {
      comment:
        " Public traffic: the ingress gateway reaches the edge's API port; what each caller\n" +
        " may do there is the JWT policy's decision (edge/auth/policy.ts).",
      resource: allow("edge-from-ingress", [{
        from: [{ source: { principals: [INGRESS_GATEWAY_PRINCIPAL] } }],
        to: [{ operation: { ports: [String(PORTS.edge)] } }],
      }]),
    },
    {
      comment:
        " Prometheus (holding Istio certificates, docs/deploying.md) scrapes the admin ports.",
      resource: allow("metrics-from-prometheus", [{
        from: [{ source: { principals: [PROMETHEUS_PRINCIPAL] } }],
        to: [{
          operation: {
            methods: ["GET"],
            ports: [String(PORTS.edgeAdmin), String(PORTS.workerAdmin)],
            paths: ["/metrics"],
          },
        }],
      }], { matchLabels: { "app.kubernetes.io/name": "pleasant-cove" } }),
    },
    {
      comment: " Callers of the edge bound what they send and stop sending to an instance that\n" +
        " fails at the connection level. HTTP 5xx do not eject: the breakers are shared\n" +
        " through Redis, so every instance answers an open breaker with the same 503 and\n" +
        " ejecting one only moves its load onto the others (docs/deploying.md).",
      resource: new DestinationRule({
        metadata: { name: "edge", namespace: NAMESPACE },
        spec: {
          host: `edge.${NAMESPACE}.svc.cluster.local`,
          trafficPolicy: {
            tls: { mode: "ISTIO_MUTUAL" },
            connectionPool: {
              tcp: { maxConnections: 2000, connectTimeout: "2s" },
              http: {
                http1MaxPendingRequests: 1000,
                http2MaxRequests: 4000,
                maxRetries: 2,
                idleTimeout: "300s",
              },
            },
            outlierDetection: {
              splitExternalLocalOriginErrors: true,
              consecutiveLocalOriginFailures: 5,
              consecutive5xxErrors: 0,
              interval: "10s",
              baseEjectionTime: "30s",
              maxEjectionPercent: 34,
            },
          },
        },
      }),
    },
  ];
}

/** Layer 3/4 below the mesh: default deny, the edge's API port, the metrics ports. */
export function networkPolicies(): Manifest[] {
  const tcp = (port: number) => ({ port, protocol: "TCP" as const });
  return [
    {
      comment: " NetworkPolicies: nothing reaches a pod of the namespace unless allowed here.",
      resource: new NetworkPolicy({
        metadata: { name: "default-deny-ingress", namespace: NAMESPACE },
        spec: { podSelector: {}, policyTypes: ["Ingress"] },
      }),
    },
    {
      comment: " Only the edge's API port, from the ingress gateway and the two in-mesh callers.",
      resource: new NetworkPolicy({
        metadata: { name: "edge-api", namespace: NAMESPACE },
        spec: {
          podSelector: { matchLabels: labelsOf("edge") },
          policyTypes: ["Ingress"],
          ingress: [{
            from: [
              {
                namespaceSelector: {
                  matchLabels: { "kubernetes.io/metadata.name": "istio-system" },
                },
                podSelector: { matchLabels: { istio: "ingressgateway" } },
              },
              { podSelector: { matchLabels: { "app.kubernetes.io/name": "api-gateway" } } },
              { podSelector: { matchLabels: { "app.kubernetes.io/name": "minerva" } } },
            ],
            ports: [tcp(PORTS.edge)],
          }],
        },
      }),
    },
    {
      comment:
        " Only Prometheus reaches the metrics/admin ports (the kubelet's probes go to the\n" +
        " sidecar's port 15020, which Istio rewrites them to).",
      resource: new NetworkPolicy({
        metadata: { name: "metrics-from-prometheus", namespace: NAMESPACE },
        spec: {
          podSelector: { matchLabels: { "app.kubernetes.io/name": "pleasant-cove" } },
          policyTypes: ["Ingress"],
          ingress: [{
            from: [{
              namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
              podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            }],
            ports: [tcp(PORTS.edgeAdmin), tcp(PORTS.workerAdmin)],
          }],
        },
      }),
    },
  ];
}
