import assert from "node:assert/strict";
import { useTestStack } from "../../testing/stack.ts";
import { createMetrics, renderMetrics } from "../../shared/metrics/metrics.ts";
import { observeLiveHub } from "../edge_metrics.ts";
import { rawUpgrade, startInstance, TestClient, token } from "../../testing/live_feed.ts";
import { testNamespace } from "../../testing/namespace.ts";
import { waitUntil } from "../../testing/wait.ts";
import { noSanitizers } from "../../testing/sanitizers.ts";

// The hub holds an SSE subscription and sockets whose teardown is asynchronous.
const opts = noSanitizers;

Deno.test({
  name: "live feed caps: sockets per sub and per instance are refused before the upgrade",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using instance = await startInstance(deps, {
      namespace: testNamespace(),
      instanceId: "caps",
      maxSocketsPerSub: 2,
      maxSocketsPerInstance: 3,
      upgradesPerMinute: 100,
    });
    const vera = await token(deps.config.auth, "vera", { roles: ["viewer"] });
    const open = [
      await TestClient.connect(instance, vera),
      await TestClient.connect(instance, vera),
    ];
    try {
      // A third socket for the same sub: refused with a clear code, not upgraded.
      const third = await rawUpgrade(instance.port, "/v1/ws", {
        "Sec-WebSocket-Protocol": `bearer, ${vera}`,
      });
      try {
        assert.equal(third.status, 429);
        assert.match(third.head, /retry-after: \d+/i);
        assert.equal(JSON.parse(await third.body()).code, "too-many-sockets");
      } finally {
        third.close();
      }
      // Other principals still connect until the instance is full.
      const otto = await token(deps.config.auth, "otto", { roles: ["viewer"] });
      open.push(await TestClient.connect(instance, otto));
      const late = await rawUpgrade(instance.port, "/v1/ws", {
        "Sec-WebSocket-Protocol": `bearer, ${otto}`,
      });
      try {
        assert.equal(late.status, 503);
        assert.equal(JSON.parse(await late.body()).code, "live-feed-full");
      } finally {
        late.close();
      }
      // Closing a socket frees its place.
      await open.shift()!.close();
      await waitUntil(() => instance.hub.connections().length === 2, { what: "socket gone" });
      open.push(await TestClient.connect(instance, vera));
      assert.equal(instance.hub.connections().length, 3);

      const metrics = createMetrics();
      observeLiveHub(metrics, instance.hub.metrics);
      const lines = (await renderMetrics(metrics)).split("\n");
      for (
        const line of [
          'ws_upgrades_refused_total{code="too-many-sockets"} 1',
          'ws_upgrades_refused_total{code="live-feed-full"} 1',
          'ws_upgrades_refused_total{code="too-many-upgrades"} 0',
        ]
      ) assert.ok(lines.includes(line), `${line} missing from:\n${lines.join("\n")}`);
    } finally {
      for (const c of open) await c.close();
    }
  },
});

Deno.test({
  name: "live feed upgrades are charged to an in-process limiter per sub",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using instance = await startInstance(deps, {
      namespace: testNamespace(),
      instanceId: "upgrades",
      upgradesPerMinute: 3,
    });
    const vera = await token(deps.config.auth, "vera", { roles: ["viewer"] });
    for (let i = 0; i < 3; i++) await (await TestClient.connect(instance, vera)).close();
    const refused = await rawUpgrade(instance.port, "/v1/ws", {
      "Sec-WebSocket-Protocol": `bearer, ${vera}`,
    });
    try {
      assert.equal(refused.status, 429);
      assert.equal(JSON.parse(await refused.body()).code, "too-many-upgrades");
    } finally {
      refused.close();
    }
    // Another principal has its own budget.
    const otto = await token(deps.config.auth, "otto", { roles: ["viewer"] });
    await (await TestClient.connect(instance, otto)).close();
    const metrics = createMetrics();
    observeLiveHub(metrics, instance.hub.metrics);
    assert.ok(
      (await renderMetrics(metrics)).split("\n").includes(
        'ws_upgrades_refused_total{code="too-many-upgrades"} 1',
      ),
    );
  },
});

Deno.test({
  name: "GET /v1/ws with `Upgrade: WebSocket` (mixed case) upgrades",
  ...opts,
  async fn() {
    await using stack = await useTestStack();
    const deps = stack.makeDeps();
    await using instance = await startInstance(deps, {
      namespace: testNamespace(),
      instanceId: "mixed-case",
    });
    const vera = await token(deps.config.auth, "vera", { roles: ["viewer"] });
    for (const upgrade of ["WebSocket", "WEBSOCKET"]) {
      const peer = await rawUpgrade(instance.port, "/v1/ws", {
        "Sec-WebSocket-Protocol": `bearer, ${vera}`,
        "Upgrade": upgrade,
      });
      try {
        assert.equal(peer.status, 101, `Upgrade: ${upgrade} answered ${peer.head}`);
      } finally {
        peer.close();
      }
    }
  },
});
