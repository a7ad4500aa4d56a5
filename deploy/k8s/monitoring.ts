/**
 * Prometheus Operator resources: a PodMonitor for the admin ports and a
 * PrometheusRule whose groups are the repository's rules file.
 *
 * @module
 */
import {
  PodMonitor,
  PrometheusRule,
} from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";
import { type Manifest, NAMESPACE } from "./settings.ts";

/** The rules file the PrometheusRule carries (promtool checks it). */
export const RULES_FILE = new URL("../prometheus/rules.yml", import.meta.url);

/**
 * Istio writes its workload certificates into the Prometheus pod
 * (docs/deploying.md); with them Prometheus scrapes over the mesh's mTLS.
 */
const ISTIO_TLS = {
  caFile: "/etc/prom-certs/root-cert.pem",
  certFile: "/etc/prom-certs/cert-chain.pem",
  keyFile: "/etc/prom-certs/key.pem",
  insecureSkipVerify: true,
};

/** The rule groups of a Prometheus rules file (`{ groups: [...] }`). */
export type RuleGroups = NonNullable<NonNullable<PrometheusRule["spec"]>["groups"]>;

/**
 * The PodMonitor, and the PrometheusRule when the rules file exists (`groups`
 * null: not yet; the observability work adds it).
 */
export function monitoring(groups: RuleGroups | null): Manifest[] {
  const endpoint = (port: string) => ({
    port,
    path: "/metrics",
    interval: "15s",
    scheme: "https" as const,
    tlsConfig: ISTIO_TLS,
  });
  const manifests: Manifest[] = [{
    comment: " Monitoring (Prometheus Operator), scraped over the mesh's mTLS.",
    resource: new PodMonitor({
      metadata: { name: "pleasant-cove", namespace: NAMESPACE },
      spec: {
        selector: { matchLabels: { "app.kubernetes.io/name": "pleasant-cove" } },
        podMetricsEndpoints: [endpoint("http-metrics"), endpoint("http-admin")],
      },
    }),
  }];
  if (groups) {
    manifests.push({
      comment: " spec.groups is deploy/prometheus/rules.yml (`deno task deploy:render`).",
      resource: new PrometheusRule({
        metadata: { name: "pleasant-cove", namespace: NAMESPACE },
        spec: { groups },
      }),
    });
  }
  return manifests;
}
