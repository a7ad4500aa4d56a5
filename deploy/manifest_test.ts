/**
 * deploy.yaml validated offline: every document against its schema, the pod
 * hardening baseline, pinned images, grace periods, disruption budgets and
 * the secret plumbing (ExternalSecret → Secret → projected file → NAME_FILE).
 */
import assert from "node:assert/strict";
import { type Doc, find, loadDeployYaml, parseDocs, podTemplates, validateDoc } from "./load.ts";

const docs = await loadDeployYaml();

Deno.test("every document of deploy.yaml validates against its schema", () => {
  assert(docs.length > 20, `only ${docs.length} documents`);
  for (const doc of docs) validateDoc(doc);
});

Deno.test("an invalid field, a missing required field or an unknown kind fails validation", () => {
  const broken = (kind: string, name: string, edit: (d: Doc) => void) => {
    const copy = structuredClone(find(docs, kind, name));
    edit(copy);
    return copy;
  };
  const cases: Doc[] = [
    broken("Deployment", "edge", (d) => {
      d.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = "no";
    }),
    broken(
      "Deployment",
      "workers",
      (d) => d.spec.template.spec.terminationGracePeriodSeconds = "75s",
    ),
    broken("ScaledObject", "workers", (d) => delete d.spec.scaleTargetRef.name),
    broken("ExternalSecret", "database", (d) => delete d.spec.data[0].remoteRef.key),
    broken("AuthorizationPolicy", "edge-control-api", (d) => d.spec.action = "PERMIT"),
    broken("PeerAuthentication", "default", (d) => d.spec.mtls.mode = "STRICTEST"),
    broken("DestinationRule", "edge", (d) => d.spec.trafficPolicy.connectionPool.tcp = "many"),
    broken("PodMonitor", "pleasant-cove", (d) => d.spec.podMetricsEndpoints = {}),
    broken("Namespace", "pleasant-cove", (d) => d.apiVersion = "v2"),
  ];
  for (const doc of cases) {
    assert.throws(
      () => validateDoc(doc),
      (err: Error) => err.message.startsWith(doc.kind),
      doc.kind,
    );
  }
  assert.throws(() => parseDocs("kind: [unclosed"), SyntaxError);
});

Deno.test("every image is pinned by digest", () => {
  const images = podTemplates(docs).flatMap(({ pod }) =>
    [...pod.containers, ...(pod.initContainers ?? [])].map((c) => c.image as string)
  );
  assert(images.length >= 3);
  for (const image of images) assert.match(image, /^[a-z0-9./-]+@sha256:[0-9a-f]{64}$/);
});

Deno.test("every pod meets the restricted baseline and mounts secrets only as projected files", () => {
  for (const { owner, pod } of podTemplates(docs)) {
    assert.deepEqual(pod.securityContext.runAsNonRoot, true, owner);
    assert(pod.securityContext.runAsUser > 0, owner);
    assert.deepEqual(pod.securityContext.seccompProfile.type, "RuntimeDefault", owner);
    assert.deepEqual(pod.automountServiceAccountToken, undefined, owner);
    for (const c of pod.containers) {
      const where = `${owner} ${c.name}`;
      assert.deepEqual(c.securityContext.allowPrivilegeEscalation, false, where);
      assert.deepEqual(c.securityContext.readOnlyRootFilesystem, true, where);
      assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"], where);
      assert.deepEqual(c.securityContext.capabilities.add, undefined, where);
      assert(c.resources.requests.cpu && c.resources.limits.memory, `${where}: resources`);
      // subPath mounts are never updated by the kubelet: rotation would not reach them.
      for (const m of c.volumeMounts) assert.deepEqual(m.subPath, undefined, where);
      for (const e of c.env) {
        assert.deepEqual(e.valueFrom, undefined, `${where}: ${e.name} from a Secret`);
      }
      assert.deepEqual(c.envFrom, undefined, where);
    }
    for (const v of pod.volumes) {
      assert(
        v.projected || v.emptyDir,
        `${owner}: volume ${v.name} is neither projected nor emptyDir`,
      );
    }
  }
  for (const name of ["edge", "workers", "migrate"]) {
    assert.deepEqual(find(docs, "ServiceAccount", name).automountServiceAccountToken, false, name);
  }
});

function envValue(container: { env: { name: string; value: string }[] }, name: string): number {
  const entry = container.env.find((e) => e.name === name);
  if (!entry) throw new TypeError(`${name} is not set`);
  return Number(entry.value);
}

Deno.test("grace periods outlive preStop + drain (+ one lease for workers) + pool close", () => {
  const POOL_CLOSE_S = 2; // closeDeps() in shared/deps.ts
  for (const name of ["edge", "workers"]) {
    const pod = find(docs, "Deployment", name).spec.template.spec;
    const c = pod.containers[0];
    const preStop = c.lifecycle.preStop.sleep.seconds as number;
    const drainMs = name === "edge"
      ? envValue(c, "SHUTDOWN_TIMEOUT_MS")
      : envValue(c, "WORKER_SHUTDOWN_GRACE_MS") + envValue(c, "WORKER_LEASE_MS");
    const needed = preStop + drainMs / 1000 + POOL_CLOSE_S;
    assert(
      pod.terminationGracePeriodSeconds > needed,
      `${name}: terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} ≤ ${needed}`,
    );
  }
});

Deno.test("Deployments spread across zones and nodes and have a disruption budget", () => {
  const budgets = docs.filter((d) => d.kind === "PodDisruptionBudget");
  for (const name of ["edge", "workers"]) {
    const deployment = find(docs, "Deployment", name);
    const labels = deployment.spec.template.metadata.labels;
    const keys = deployment.spec.template.spec.topologySpreadConstraints.map((t: Doc) =>
      t.topologyKey
    );
    assert.deepEqual(keys.sort(), ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    const covering = budgets.filter((b) =>
      Object.entries(b.spec.selector.matchLabels).every(([k, v]) => labels[k] === v)
    );
    assert.deepEqual(covering.length, 1, `${name}: PodDisruptionBudgets covering it`);
  }
});

Deno.test("every NAME_FILE is a key an ExternalSecret renders into a Secret the pod mounts", () => {
  const rendered = new Map<string, Set<string>>(); // Secret name → keys
  for (const es of docs.filter((d) => d.kind === "ExternalSecret")) {
    assert.deepEqual(es.spec.secretStoreRef.kind, "ClusterSecretStore");
    find(docs, "ClusterSecretStore", es.spec.secretStoreRef.name);
    rendered.set(es.spec.target.name, new Set(es.spec.data.map((d: Doc) => d.secretKey)));
  }
  for (const { owner, pod } of podTemplates(docs)) {
    for (const c of pod.containers) {
      for (const e of c.env.filter((e: Doc) => e.name.endsWith("_FILE"))) {
        const mount = c.volumeMounts.find((m: Doc) => e.value.startsWith(`${m.mountPath}/`));
        assert(mount, `${owner}: ${e.name} points outside every mount`);
        const file = e.value.slice(mount.mountPath.length + 1);
        const volume = pod.volumes.find((v: Doc) => v.name === mount.name);
        const source = volume.projected.sources.find((s: Doc) =>
          s.secret.items.some((i: Doc) => i.path === file)
        );
        assert(source, `${owner}: no projected Secret provides ${file}`);
        const key = source.secret.items.find((i: Doc) => i.path === file).key;
        assert(rendered.get(source.secret.name)?.has(key), `${owner}: ${key} is not rendered`);
      }
    }
  }
});

Deno.test("the secret store authenticates through IRSA, with no static keys", () => {
  const store = find(docs, "ClusterSecretStore", "pleasant-cove-aws");
  const aws = store.spec.provider.aws;
  assert.deepEqual(aws.service, "SecretsManager");
  assert.deepEqual(Object.keys(aws.auth), ["jwt"]);
  const account = find(docs, "ServiceAccount", aws.auth.jwt.serviceAccountRef.name);
  assert.match(
    account.metadata.annotations?.["eks.amazonaws.com/role-arn"] ?? "",
    /^arn:aws:iam::\d{12}:role\//,
  );
  const remote = docs.filter((d) => d.kind === "ExternalSecret").flatMap((es) =>
    es.spec.data.map((d: Doc) => d.remoteRef.key)
  );
  assert.deepEqual(
    [...new Set(remote)].sort(),
    ["pleasant-cove/api-keys", "pleasant-cove/database", "pleasant-cove/jwt"],
  );
});

Deno.test("the namespace injects sidecars, enforces the restricted profile and mTLS is STRICT", () => {
  const ns = find(docs, "Namespace", "pleasant-cove");
  assert.deepEqual(ns.metadata.labels!["istio-injection"], "enabled");
  assert.deepEqual(ns.metadata.labels!["pod-security.kubernetes.io/enforce"], "restricted");
  const peer = find(docs, "PeerAuthentication", "default");
  assert.deepEqual(peer.spec.selector, undefined, "namespace-wide");
  assert.deepEqual(peer.spec.mtls.mode, "STRICT");
  assert.deepEqual(docs.filter((d) => d.kind === "PeerAuthentication").length, 1);
});
