/**
 * AWS Secrets Manager → External Secrets Operator → Kubernetes Secrets, which
 * the pods mount as files (workloads.ts) and read as `NAME_FILE`.
 *
 * @module
 */
import { ServiceAccount } from "kubernetes-models/v1";
import {
  ClusterSecretStore,
  ExternalSecret,
} from "@kubernetes-models/external-secrets/external-secrets.io/v1";
import { AWS_SECRETS, type Manifest, NAMESPACE, secretNameOf } from "./settings.ts";

/** The store every ExternalSecret of the namespace reads from. */
const STORE = "pleasant-cove-aws";
/** How often the operator re-reads AWS; rotation reaches the files within this plus kubelet sync. */
const REFRESH = "5m";

/** The IRSA service account, the ClusterSecretStore and one ExternalSecret per AWS secret. */
export function secrets(): Manifest[] {
  return [
    {
      comment:
        " Secrets: AWS Secrets Manager → External Secrets Operator → Secrets → files under\n" +
        " /run/secrets/pleasant-cove → NAME_FILE. The operator assumes this role through IRSA\n" +
        " (a short-lived projected token): no static AWS keys anywhere.",
      resource: new ServiceAccount({
        metadata: {
          name: "secrets-reader",
          namespace: NAMESPACE,
          annotations: {
            "eks.amazonaws.com/role-arn":
              "arn:aws:iam::111122223333:role/pleasant-cove-secrets-reader",
          },
        },
      }),
    },
    {
      resource: new ClusterSecretStore({
        metadata: { name: STORE },
        spec: {
          conditions: [{ namespaces: [NAMESPACE] }],
          provider: {
            aws: {
              service: "SecretsManager",
              region: "us-east-1",
              auth: {
                jwt: { serviceAccountRef: { name: "secrets-reader", namespace: NAMESPACE } },
              },
            },
          },
        },
      }),
    },
    ...AWS_SECRETS.map((secret) => ({
      resource: new ExternalSecret({
        metadata: { name: secret.name, namespace: NAMESPACE },
        spec: {
          refreshInterval: REFRESH,
          secretStoreRef: { kind: "ClusterSecretStore", name: STORE },
          target: { name: secretNameOf(secret), creationPolicy: "Owner" },
          data: Object.entries(secret.properties).map(([secretKey, property]) => ({
            secretKey,
            remoteRef: { key: secret.awsKey, property },
          })),
        },
      }),
    })),
  ];
}
