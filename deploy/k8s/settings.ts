/**
 * What every manifest of `deploy.yaml` agrees on: the namespace, the image,
 * labels, ports, where secrets are mounted and the processes' settings.
 * `deploy/manifest_test.ts` checks these against the code (shared/config/,
 * the edge's routes, the policy table), so a change there that the manifests
 * miss fails a test.
 *
 * @module
 */
import type { IIoK8sApiCoreV1EnvVar } from "kubernetes-models/v1/EnvVar";
import { AWS_SECRET_LAYOUT } from "../../shared/secrets/layout.ts";

/** The namespace everything runs in. */
export const NAMESPACE = "pleasant-cove";

/**
 * The one image the edge, the workers and the migration Job run (Containerfile).
 * A digest, never a tag: the release pipeline rewrites it (docs/deploying.md).
 */
export const IMAGE =
  "ghcr.io/pleasant-cove/platform@sha256:4f3c2b1a09e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2918070605040302010ff";

/** The non-root user the Containerfile creates. */
export const RUN_AS = 10001;

/** Where the projected secret volume appears in every container. */
export const SECRETS_DIR = "/run/secrets/pleasant-cove";

/** Ports the processes listen on (defaults of EDGE_PORT, EDGE_ADMIN_PORT, WORKER_ADMIN_PORT). */
export const PORTS = { edge: 8787, edgeAdmin: 9464, workerAdmin: 9465 } as const;

/** Mesh identities outside the namespace. */
export const INGRESS_GATEWAY_PRINCIPAL =
  "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account";
/** kube-prometheus' Prometheus service account. */
export const PROMETHEUS_PRINCIPAL = "cluster.local/ns/monitoring/sa/prometheus-k8s";
/** The Prometheus query API: KEDA asks it for queue depth, the edge for the SLO status. */
export const PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090";

/** The mesh principal of a service account of the namespace. */
export function principalOf(serviceAccount: string): string {
  return `cluster.local/ns/${NAMESPACE}/sa/${serviceAccount}`;
}

/** The processes of the platform; each is a component label and a ServiceAccount. */
export type Component = "edge" | "workers" | "migrate";

/** Labels of a component's pods (and the selector of its controllers). */
export function labelsOf(component: Component): Record<string, string> {
  return { "app.kubernetes.io/name": "pleasant-cove", "app.kubernetes.io/component": component };
}

/** The Kubernetes Secret an ExternalSecret renders. */
export function secretNameOf(awsSecret: { name: string }): string {
  return `pleasant-cove-${awsSecret.name}`;
}

/** Settings every process gets (APP_ENV=production refuses the development keys). */
const COMMON_SETTINGS = {
  APP_ENV: "production",
  LOG_LEVEL: "info",
  UPSTASH_REDIS_REST_URL: "https://pleasant-cove.upstash.io",
  PUBLIC_BASE_URL: "https://api.pleasantcove.example",
};

/** Plain settings (never secrets) and secret variables (passed as `NAME_FILE`) per process. */
export const PROCESS_SETTINGS: Record<
  Component,
  { env: Record<string, string>; secrets: readonly string[] }
> = {
  edge: {
    env: {
      ...COMMON_SETTINGS,
      EDGE_HOST: "0.0.0.0",
      EDGE_PORT: String(PORTS.edge),
      // Prometheus scrapes the pod IP; the NetworkPolicy and the mesh admit only it.
      EDGE_ADMIN_HOST: "0.0.0.0",
      EDGE_ADMIN_PORT: String(PORTS.edgeAdmin),
      SHUTDOWN_TIMEOUT_MS: "10000",
      // GET /v1/slo (the console's SLO panel) reads the recording rules here.
      PROMETHEUS_URL,
    },
    secrets: ["UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL", "JWT_HS256_KEYS", "UNSUBSCRIBE_SECRET"],
  },
  workers: {
    env: {
      ...COMMON_SETTINGS,
      WORKER_ADMIN_HOST: "0.0.0.0",
      WORKER_ADMIN_PORT: String(PORTS.workerAdmin),
      WORKER_CONCURRENCY: "10",
      WORKER_LEASE_MS: "30000",
      WORKER_SHUTDOWN_GRACE_MS: "25000",
      EMAIL_PROVIDER: "http_api",
      EMAIL_API_URL: "https://api.email-provider.example/v1/messages",
    },
    secrets: [
      "UPSTASH_REDIS_REST_TOKEN",
      // The queue's scripts over TCP (rediss://, Upstash's TCP endpoint; docs/queue.md).
      "REDIS_TCP_URL",
      "DATABASE_URL",
      "JWT_HS256_KEYS",
      "UNSUBSCRIBE_SECRET",
      "EMAIL_API_KEY",
      "PLACES_API_KEY",
    ],
  },
  migrate: {
    env: { ...COMMON_SETTINGS },
    secrets: ["UPSTASH_REDIS_REST_TOKEN", "DATABASE_URL", "JWT_HS256_KEYS", "UNSUBSCRIBE_SECRET"],
  },
};

/**
 * The AWS secrets the pods need (shared/secrets/layout.ts, the layout the
 * direct AWS source reads too), limited to the variables some process reads:
 * the External Secrets Operator fails a sync on a property the secret lacks.
 */
export const AWS_SECRETS = AWS_SECRET_LAYOUT.map((secret) => ({
  name: secret.name,
  awsKey: `pleasant-cove/${secret.name}`,
  properties: Object.fromEntries(
    Object.entries(secret.properties).filter(([variable]) => usedSecret(variable)),
  ),
}));

function usedSecret(variable: string): boolean {
  return Object.values(PROCESS_SETTINGS).some((p) => p.secrets.includes(variable));
}

/** The container env of a process: its settings, then each secret as `NAME_FILE`. */
export function envOf(component: Component): IIoK8sApiCoreV1EnvVar[] {
  const { env, secrets } = PROCESS_SETTINGS[component];
  return [
    ...Object.entries(env).map(([name, value]) => ({ name, value })),
    ...secrets.map((name) => ({ name: `${name}_FILE`, value: `${SECRETS_DIR}/${name}` })),
  ];
}

/** Milliseconds of a process setting, as the manifests set it. */
export function settingMs(component: Component, name: string): number {
  const value = PROCESS_SETTINGS[component].env[name];
  if (value === undefined) throw new TypeError(`${component} does not set ${name}`);
  return Number(value);
}

/** One document of deploy.yaml: a validated model and the comment printed above it. */
export interface Manifest {
  comment?: string;
  resource: { toJSON(): unknown; validate(): void };
}
