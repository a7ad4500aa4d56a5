import assert from "node:assert/strict";
import { mintDevToken } from "../dev/token.ts";
import { useTestStack } from "../testing/stack.ts";
import { noSanitizers } from "../testing/sanitizers.ts";
import { testNamespace } from "../testing/namespace.ts";
import { createApp } from "./app.ts";

Deno.test({
  name:
    "createApp() hands the composition root a shutdown hook that gives leased rate-limit budget back",
  // Deps hold a Neon Pool (async socket teardown), so sanitizers are off here.
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const limits = (lease: unknown) =>
      JSON.stringify({
        default: { limit: 1000, window_s: 3600, lease },
        admin: { limit: 1000, window_s: 3600 },
      });
    const deps = stack.makeDeps({ RATE_LIMITS: limits(undefined) });
    const hooks: (() => Promise<void>)[] = [];
    const app = createApp(deps, { onShutdown: (hook) => hooks.push(hook) });
    assert.equal(hooks.length, 1);
    // A fresh caller, so no earlier run's count is in its budget.
    const sub = `sa:${testNamespace("lease")}`;
    const authorization = `Bearer ${await mintDevToken(deps.config.auth, { sub, roles: [] })}`;
    const remaining = async (target: typeof app) => {
      const res = await target.request("/v1/me", { headers: { authorization } });
      assert.equal(res.status, 200);
      return res.headers.get("ratelimit")?.match(/r=(\d+)/)?.[1];
    };
    // Grants of 1, 2 and 4: 7 counted in Redis, 4 spent, 3 held by this edge.
    for (const r of ["999", "998", "997", "996"]) assert.equal(await remaining(app), r);

    await Promise.all(hooks.map((hook) => hook()));

    // Another edge deciding every request in Redis sees the 3 given back: 1000 − 4 − 1.
    const other = createApp(stack.makeDeps({ RATE_LIMITS: limits(false) }));
    assert.equal(await remaining(other), "995");
  },
});
