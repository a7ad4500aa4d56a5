/**
 * Reads `deploy.yaml` back as plain documents and finds each one's schema
 * model, for the offline validation and cross-checks of deploy/*_test.ts.
 *
 * @module
 */
import { parseAllDocuments } from "yaml";
import * as core from "kubernetes-models/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as batch from "kubernetes-models/batch/v1";
import * as policy from "kubernetes-models/policy/v1";
import * as autoscaling from "kubernetes-models/autoscaling/v2";
import * as networking from "kubernetes-models/networking.k8s.io/v1";
import * as istioSecurity from "@kubernetes-models/istio/security.istio.io/v1";
import * as istioNetworking from "@kubernetes-models/istio/networking.istio.io/v1";
import * as keda from "@kubernetes-models/keda/keda.sh/v1alpha1";
import * as externalSecrets from "@kubernetes-models/external-secrets/external-secrets.io/v1";
import * as monitoring from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

/** A parsed manifest: what kubectl would send. */
export type Doc = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // deno-lint-ignore no-explicit-any
  [k: string]: any;
};

type ModelClass = { apiVersion: string; kind: string; new (data: unknown): { validate(): void } };

/** Every top-level kind of the model packages the manifests may use, by `apiVersion/kind`. */
const MODELS = new Map<string, ModelClass>();
for (
  const module of [
    core,
    apps,
    batch,
    policy,
    autoscaling,
    networking,
    istioSecurity,
    istioNetworking,
    keda,
    externalSecrets,
    monitoring,
  ]
) {
  for (const value of Object.values(module)) {
    const model = value as Partial<ModelClass>;
    if (typeof value === "function" && typeof model.apiVersion === "string" && model.kind) {
      MODELS.set(`${model.apiVersion}/${model.kind}`, value as ModelClass);
    }
  }
}

/**
 * Validates one document against the JSON Schema of its kind (Kubernetes
 * OpenAPI or the CRD's); throws naming the document and the failing path.
 */
export function validateDoc(doc: Doc): void {
  const model = MODELS.get(`${doc.apiVersion}/${doc.kind}`);
  if (!model) {
    throw new TypeError(`${doc.kind} ${doc.metadata?.name}: no schema for ${doc.apiVersion}`);
  }
  try {
    new model(structuredClone(doc)).validate();
  } catch (err) {
    throw new TypeError(`${doc.kind} ${doc.metadata?.name}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** The documents of a multi-document YAML text; a syntax error throws. */
export function parseDocs(text: string): Doc[] {
  return parseAllDocuments(text).map((d, i) => {
    if (d.errors.length > 0) throw new SyntaxError(`document ${i + 1}: ${d.errors[0]!.message}`);
    return d.toJS() as Doc;
  }).filter((d) => d !== null);
}

/** deploy.yaml as documents. */
export async function loadDeployYaml(): Promise<Doc[]> {
  return parseDocs(await Deno.readTextFile(new URL("../deploy.yaml", import.meta.url)));
}

/** The one document of `kind` named `name`; throws when absent. */
export function find(docs: Doc[], kind: string, name: string): Doc {
  const doc = docs.find((d) => d.kind === kind && d.metadata.name === name);
  if (!doc) throw new TypeError(`deploy.yaml has no ${kind} ${name}`);
  return doc;
}

/** The pod templates of the Deployments and Jobs, with their owner's name. */
// deno-lint-ignore no-explicit-any
export function podTemplates(docs: Doc[]): { owner: string; pod: any }[] {
  return docs
    .filter((d) => d.kind === "Deployment" || d.kind === "Job")
    .map((d) => ({ owner: `${d.kind} ${d.metadata.name}`, pod: d.spec.template.spec }));
}
