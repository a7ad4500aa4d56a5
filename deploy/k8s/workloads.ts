/**
 * The processes: namespace, service accounts, the migration Job, the edge and
 * worker Deployments with their disruption budgets, Services and autoscalers.
 *
 * @module
 */
import { Namespace, Service, ServiceAccount } from "kubernetes-models/v1";
import type { IIoK8sApiCoreV1PodSpec } from "kubernetes-models/v1/PodSpec";
import { Deployment } from "kubernetes-models/apps/v1";
import { Job } from "kubernetes-models/batch/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import type { IIoK8sApiCoreV1Container } from "kubernetes-models/v1/Container";
import {
  AWS_SECRETS,
  type Component,
  envOf,
  IMAGE,
  labelsOf,
  type Manifest,
  NAMESPACE,
  PORTS,
  PROCESS_SETTINGS,
  PROMETHEUS_URL,
  RUN_AS,
  secretNameOf,
  SECRETS_DIR,
  settingMs,
} from "./settings.ts";

/** Endpoint removal reaches the ingress gateway and callers' sidecars within this. */
const PRESTOP_SLEEP_S = 5;
/** closeDeps() in shared/deps.ts waits at most this long for the Postgres pool. */
const POOL_CLOSE_MS = 2000;
/** Head room above the computed drain, for a loaded node. */
const GRACE_MARGIN_S = 10;

/**
 * How long a process needs from SIGTERM's preStop to exit, in seconds.
 * Edge: preStop + SHUTDOWN_TIMEOUT_MS (in-flight requests) + pool close.
 * Workers: preStop + WORKER_SHUTDOWN_GRACE_MS (in-flight tasks finish) +
 * WORKER_LEASE_MS (a task still running is released, or its lease expires
 * and another worker takes it; the pod must outlive that lease so the release
 * is never cut off by SIGKILL) + pool close.
 */
export function drainSeconds(component: "edge" | "workers"): number {
  const ms = component === "edge"
    ? settingMs("edge", "SHUTDOWN_TIMEOUT_MS")
    : settingMs("workers", "WORKER_SHUTDOWN_GRACE_MS") + settingMs("workers", "WORKER_LEASE_MS");
  return PRESTOP_SLEEP_S + Math.ceil((ms + POOL_CLOSE_MS) / 1000);
}

/** The projected secret volume: only the keys the process reads, never via subPath. */
function secretsVolume(component: Component) {
  const wanted = new Set(PROCESS_SETTINGS[component].secrets);
  return {
    name: "secrets",
    projected: {
      sources: AWS_SECRETS.flatMap((secret) => {
        const keys = Object.keys(secret.properties).filter((k) => wanted.has(k));
        return keys.length === 0 ? [] : [{
          secret: { name: secretNameOf(secret), items: keys.map((k) => ({ key: k, path: k })) },
        }];
      }),
    },
  };
}

function container(
  component: Component,
  extra: Pick<
    IIoK8sApiCoreV1Container,
    "ports" | "startupProbe" | "livenessProbe" | "readinessProbe" | "lifecycle"
  >,
): IIoK8sApiCoreV1Container {
  const task = component === "workers" ? "worker" : component;
  return {
    name: task,
    image: IMAGE,
    command: ["deno", "task", task],
    env: envOf(component),
    resources: component === "migrate"
      ? { requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "256Mi" } }
      : { requests: { cpu: "250m", memory: "256Mi" }, limits: { cpu: "2", memory: "512Mi" } },
    ...extra,
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    },
    volumeMounts: [
      { name: "secrets", mountPath: SECRETS_DIR, readOnly: true },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

function podSpec(component: Component, main: IIoK8sApiCoreV1Container): IIoK8sApiCoreV1PodSpec {
  const spread = (topologyKey: string, hard: boolean) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: hard ? "DoNotSchedule" as const : "ScheduleAnyway" as const,
    labelSelector: { matchLabels: labelsOf(component) },
  });
  return {
    serviceAccountName: component,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: RUN_AS,
      runAsGroup: RUN_AS,
      seccompProfile: { type: "RuntimeDefault" },
    },
    ...(component === "migrate" ? { restartPolicy: "OnFailure" } : {
      terminationGracePeriodSeconds: drainSeconds(component) + GRACE_MARGIN_S,
      topologySpreadConstraints: [
        spread("topology.kubernetes.io/zone", false),
        spread("kubernetes.io/hostname", component === "edge"),
      ],
    }),
    containers: [main],
    volumes: [secretsVolume(component), { name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
  };
}

function probes(port: string) {
  return {
    startupProbe: { httpGet: { path: "/health", port }, periodSeconds: 2, failureThreshold: 30 },
    // /health does no I/O: a Redis or Postgres outage must not restart every pod.
    livenessProbe: {
      httpGet: { path: "/health", port },
      periodSeconds: 10,
      timeoutSeconds: 2,
      failureThreshold: 3,
    },
    readinessProbe: {
      httpGet: { path: "/ready", port },
      periodSeconds: 5,
      timeoutSeconds: 3,
      failureThreshold: 2,
    },
    lifecycle: { preStop: { sleep: { seconds: PRESTOP_SLEEP_S } } },
  };
}

function deployment(
  component: "edge" | "workers",
  replicas: number,
  main: IIoK8sApiCoreV1Container,
) {
  return new Deployment({
    metadata: { name: component, namespace: NAMESPACE, labels: labelsOf(component) },
    spec: {
      replicas,
      revisionHistoryLimit: 5,
      selector: { matchLabels: labelsOf(component) },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
      template: {
        metadata: {
          labels: labelsOf(component),
          annotations: {
            // The proxy is up before the app's first call and outlives its drain.
            "proxy.istio.io/config": `holdApplicationUntilProxyStarts: true\n` +
              `terminationDrainDuration: ${drainSeconds(component)}s\n`,
          },
        },
        spec: podSpec(component, main),
      },
    },
  });
}

/** Scale-down after five quiet minutes, `pods` per minute: a burst often comes back. */
function scaleDownSlowly(pods: number) {
  return {
    scaleDown: {
      stabilizationWindowSeconds: 300,
      policies: [{ type: "Pods" as const, value: pods, periodSeconds: 60 }],
    },
  };
}

function serviceAccount(name: string, annotations?: Record<string, string>) {
  return new ServiceAccount({
    metadata: { name, namespace: NAMESPACE, ...(annotations ? { annotations } : {}) },
    // The platform never calls the Kubernetes API.
    ...(["edge", "workers", "migrate"].includes(name)
      ? { automountServiceAccountToken: false }
      : {}),
  });
}

/** The namespace and every service account (Istio derives principals from them). */
export function identities(): Manifest[] {
  return [
    {
      resource: new Namespace({
        metadata: {
          name: NAMESPACE,
          labels: {
            "istio-injection": "enabled",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
          },
        },
      }),
    },
    {
      comment: " Identities: Istio derives each pod's principal from its ServiceAccount,\n" +
        " cluster.local/ns/pleasant-cove/sa/<name>.",
      resource: serviceAccount("edge"),
    },
    { resource: serviceAccount("workers") },
    { resource: serviceAccount("migrate") },
    {
      comment: " The two in-mesh callers of the control API; their Deployments belong to\n" +
        " their own projects, these accounts give them the principals the policies name.",
      resource: serviceAccount("api-gateway"),
    },
    { resource: serviceAccount("minerva") },
  ];
}

/** The migration Job, the Deployments, disruption budgets, Services and autoscalers. */
export function workloads(): Manifest[] {
  const edge = container("edge", {
    ports: [
      { name: "http", containerPort: PORTS.edge },
      { name: "http-metrics", containerPort: PORTS.edgeAdmin },
    ],
    ...probes("http"),
  });
  const worker = container("workers", {
    ports: [{ name: "http-admin", containerPort: PORTS.workerAdmin }],
    ...probes("http-admin"),
  });
  return [
    {
      comment: " Migrations: applied and waited for before the Deployments (docs/deploying.md).\n" +
        " The migrator takes an advisory lock and skips applied files: a second run is a no-op.",
      resource: new Job({
        metadata: { name: "migrate", namespace: NAMESPACE, labels: labelsOf("migrate") },
        spec: {
          backoffLimit: 3,
          activeDeadlineSeconds: 600,
          ttlSecondsAfterFinished: 3600,
          template: {
            metadata: {
              labels: labelsOf("migrate"),
              // A native sidecar exits with the Job's container, so the Job completes.
              annotations: { "sidecar.istio.io/nativeSidecar": "true" },
            },
            spec: podSpec("migrate", container("migrate", {})),
          },
        },
      }),
    },
    {
      comment:
        ` The edge. Grace period: preStop ${PRESTOP_SLEEP_S} s + SHUTDOWN_TIMEOUT_MS + pool close` +
        ` ${POOL_CLOSE_MS / 1000} s\n = ${
          drainSeconds("edge")
        } s, plus ${GRACE_MARGIN_S} s head room.`,
      resource: deployment("edge", 3, edge),
    },
    {
      comment:
        ` The workers. Grace period: preStop ${PRESTOP_SLEEP_S} s + WORKER_SHUTDOWN_GRACE_MS` +
        ` (in-flight tasks\n finish) + WORKER_LEASE_MS (the pod outlives the lease of a task it` +
        ` releases) + pool\n close ${POOL_CLOSE_MS / 1000} s = ${drainSeconds("workers")} s, plus` +
        ` ${GRACE_MARGIN_S} s head room. KEDA owns the replica count.`,
      resource: deployment("workers", 2, worker),
    },
    {
      resource: new PodDisruptionBudget({
        metadata: { name: "edge", namespace: NAMESPACE },
        spec: { minAvailable: 2, selector: { matchLabels: labelsOf("edge") } },
      }),
    },
    {
      resource: new PodDisruptionBudget({
        metadata: { name: "workers", namespace: NAMESPACE },
        spec: { maxUnavailable: 1, selector: { matchLabels: labelsOf("workers") } },
      }),
    },
    {
      resource: new Service({
        metadata: { name: "edge", namespace: NAMESPACE, labels: labelsOf("edge") },
        spec: {
          selector: labelsOf("edge"),
          ports: [
            { name: "http", port: 80, targetPort: "http", appProtocol: "http" },
            {
              name: "http-metrics",
              port: PORTS.edgeAdmin,
              targetPort: "http-metrics",
              appProtocol: "http",
            },
          ],
        },
      }),
    },
    {
      resource: new Service({
        metadata: { name: "workers-admin", namespace: NAMESPACE, labels: labelsOf("workers") },
        spec: {
          selector: labelsOf("workers"),
          ports: [{
            name: "http-admin",
            port: PORTS.workerAdmin,
            targetPort: "http-admin",
            appProtocol: "http",
          }],
        },
      }),
    },
    {
      resource: new HorizontalPodAutoscaler({
        metadata: { name: "edge", namespace: NAMESPACE },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "edge" },
          minReplicas: 3,
          maxReplicas: 20,
          metrics: [{
            type: "Resource",
            resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 65 } },
          }],
          behavior: scaleDownSlowly(1),
        },
      }),
    },
    {
      comment: " Workers scale on queue depth, not CPU (a worker waiting on an email API is\n" +
        " idle but busy): 20 ready tasks per replica, two rounds of WORKER_CONCURRENCY.\n" +
        " Never below 2: the scheduler of recurring tasks runs inside the workers.",
      resource: new ScaledObject({
        metadata: { name: "workers", namespace: NAMESPACE },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "workers" },
          minReplicaCount: 2,
          maxReplicaCount: 30,
          pollingInterval: 15,
          cooldownPeriod: 300,
          // Prometheus unreachable: hold a safe size rather than collapse to the minimum.
          fallback: { failureThreshold: 4, replicas: 6 },
          advanced: {
            horizontalPodAutoscalerConfig: { behavior: scaleDownSlowly(2) },
          },
          triggers: [{
            type: "prometheus",
            metadata: {
              serverAddress: PROMETHEUS_URL,
              // Every edge and worker reads the same Redis and exports the same
              // depth: max per priority, then the sum over priorities.
              query: 'sum(max by (priority) (task_queue_size{state="ready"}))',
              threshold: "20",
              ignoreNullValues: "false",
            },
          }],
        },
      }),
    },
  ];
}
