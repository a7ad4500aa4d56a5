import assert from "node:assert/strict";
import { mintDevToken } from "../../dev/token.ts";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { createQueue } from "../../shared/queue/queue.ts";
import { TASK_CATALOG } from "../../shared/tasks/catalog.ts";
import { createApp } from "../app.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";
import { testNamespace } from "../../testing/namespace.ts";

Deno.test({
  name: "/v1/breakers lists breakers and lets an admin force-open, disable and reset them",
  // Deps hold a Neon Pool and the registry an SSE subscription (async teardown).
  ...noSanitizers,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    const ns = testNamespace("b");
    const breakers = createBreakerRegistry({
      redis: deps.redis,
      policies: deps.config.breakerPolicies,
      namespace: ns,
    });
    await breakers.start();
    try {
      const queue = createQueue(deps.redis, TASK_CATALOG, { namespace: ns });
      const app = createApp(deps, { queue, breakers });
      const admin = `Bearer ${await mintDevToken(deps.config.auth, {
        sub: "alice",
        roles: ["admin"],
      })}`;
      const operator = `Bearer ${await mintDevToken(deps.config.auth, {
        sub: "bob",
        roles: ["operator"],
      })}`;
      const call = (method: string, path: string, auth = admin) =>
        app.request(path, {
          method,
          headers: { authorization: auth, "content-type": "application/json" },
        });

      const list = await call("GET", "/v1/breakers");
      assert.equal(list.status, 200);
      const names = (await list.json()).breakers.map((b: { name: string; state: string }) =>
        `${b.name}:${b.state}`
      );
      for (const name of ["database", "control", "analytics", "email", "calendar", "places"]) {
        assert.ok(names.includes(`${name}:closed`), `${name} listed closed: ${names}`);
      }

      const forced = await call("POST", "/v1/breakers/email/force-open");
      assert.equal(forced.status, 200);
      assert.equal((await forced.json()).state, "forced_open");
      await assert.rejects(breakers.get("email").call(() => Promise.resolve(1)), {
        code: "breaker-open",
      });

      assert.equal(
        (await (await call("POST", "/v1/breakers/email/disable")).json()).state,
        "disabled",
      );
      assert.equal((await (await call("POST", "/v1/breakers/email/reset")).json()).state, "closed");
      assert.equal(await breakers.get("email").call(() => Promise.resolve(7)), 7);

      const unknown = await call("POST", "/v1/breakers/nope/reset");
      assert.equal(unknown.status, 404);
      assert.equal((await unknown.json()).code, "breaker-not-found");
      const denied = await call("POST", "/v1/breakers/email/force-open", operator);
      assert.equal(denied.status, 403);
      await denied.body?.cancel();

      const spec = await (await app.request("/openapi.json")).json();
      assert.ok(spec.paths["/v1/breakers/{name}/force-open"]?.post);
    } finally {
      await breakers.stop();
    }
  },
});
