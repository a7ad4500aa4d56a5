import assert from "node:assert/strict";
import { VARIABLES, type VariableSpec } from "../config/mod.ts";
import { AWS_SECRET_LAYOUT } from "./layout.ts";
import { RELOADED_SECRETS, RESTART_SECRETS } from "./apply.ts";

const SECRETS = (VARIABLES as readonly VariableSpec[]).filter((s) => s.secret).map((s) => s.name);

Deno.test("every secret variable has a place in AWS and a rotation story", () => {
  const inAws = AWS_SECRET_LAYOUT.flatMap((s) => Object.keys(s.properties));
  assert.deepEqual([...inAws].sort(), [...SECRETS].sort(), "AWS layout vs shared/config/");
  const handled = [...RELOADED_SECRETS, ...RESTART_SECRETS];
  assert.deepEqual([...handled].sort(), [...SECRETS].sort(), "apply.ts vs shared/config/");
});
