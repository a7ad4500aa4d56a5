import assert from "node:assert/strict";
import type { IIoK8sApiCoreV1PodSpec } from "kubernetes-models/v1/PodSpec";
import { DEPLOY_YAML, readRuleGroups, renderDeployYaml } from "./render.ts";

Deno.test("deploy.yaml is what deploy/k8s/ renders (run `deno task deploy:render`)", async () => {
  const rendered = renderDeployYaml(await readRuleGroups());
  assert.equal(await Deno.readTextFile(DEPLOY_YAML), rendered);
});

Deno.test("rendering refuses a document its schema rejects", () => {
  const groups = [{ name: "broken", rules: [{ record: "x" }] }] as unknown as Parameters<
    typeof renderDeployYaml
  >[0];
  assert.throws(() => renderDeployYaml(groups), /expr/);
});

Deno.test("a field the schema does not know is a type error in deploy/k8s/ (deno check fails)", () => {
  const pod: IIoK8sApiCoreV1PodSpec = {
    containers: [],
    // @ts-expect-error: a typo of serviceAccountName; `deno check` fails if this stops erroring
    serviceAcountName: "edge",
  };
  assert.equal(pod.containers.length, 0);
});
