import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createBreakerRegistry } from "../../shared/breakers/registry.ts";
import { queueKeys } from "../../shared/redis/keys.ts";
import { relayBreakerTransitions, relayDeadLetters } from "./relays.ts";
import { startPair, TestClient, token } from "../../testing/live_feed.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The SDK's SSE streams are torn down asynchronously (the aborted fetch's body
// settles a tick later), and the stack's deps hold a Neon Pool.
const opts = noSanitizers;

Deno.test({
  name: "breaker transitions and dead-letter alerts reach the live feed once, from any instance",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = [stack.makeDeps(), stack.makeDeps()] as const;
    await using pair = await startPair([deps[0], deps[1]]);
    const [a, b] = pair;
    const namespace = pair.namespace;
    const registries = [a, b].map((x, i) =>
      createBreakerRegistry({
        redis: deps[i]!.redis,
        namespace,
        instanceId: `${x.hub.instanceId}-br`,
        heartbeatMs: 100,
        policies: { up: { fail_max: 2, reset_timeout_ms: 1000 } },
      })
    );
    const relays = [
      ...registries.map((r, i) => relayBreakerTransitions(r, { hub: [a, b][i]!.hub })),
      ...[a, b].map((x, i) =>
        relayDeadLetters({ redis: deps[i]!.redis, hub: x.hub, namespace, heartbeatMs: 100 })
      ),
    ];
    const admin = await token(deps[0].config.auth, "root", { roles: ["admin"] });
    const client = await TestClient.connect(a, admin, { topics: ["breakers", "dlq:send_email"] });
    try {
      await Promise.all([...registries.map((r) => r.start()), ...relays.map((r) => r.start())]);
      await client.waitFor(() => client.frames.filter((f) => f.type === "subscribed").length === 2);

      await registries[1]!.forceOpen("up");
      await waitUntil(() => registries[0]!.get("up").state === "forced_open");
      await registries[0]!.reset("up");
      await client.waitFor(() => client.messages("breakers").length >= 2, "two transitions");
      const queue = queueKeys(namespace);
      const alert = (type: string) => ({ event: "dead", id: crypto.randomUUID(), type, at: 1 });
      await deps[0].redis.publish(queue.dlqChannel, JSON.stringify(alert("scrape_leads")));
      await deps[0].redis.publish(queue.dlqChannel, JSON.stringify(alert("send_email")));
      await client.waitFor(() => client.messages("dlq").length >= 1, "the dead-letter alert");
      await new Promise((r) => setTimeout(r, 200)); // a duplicate would have arrived by now
      assert.deepEqual(
        client.messages("breakers").map((m) => [m.key, (m.data as { to: string }).to]),
        [["up", "forced_open"], ["up", "closed"]],
      );
      assert.deepEqual(
        client.messages("dlq").map((m) => [m.key, (m.data as { type: string }).type]),
        [["send_email", "send_email"]],
      );
    } finally {
      await client.close();
      await Promise.all([...relays.map((r) => r.stop()), ...registries.map((r) => r.stop())]);
    }
  },
});
