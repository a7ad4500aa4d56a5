import assert from "node:assert/strict";
import { fakeClock } from "../../testing/clock.ts";
import { Deadlines } from "./deadlines.ts";
import { TokenLifetime } from "./token_lifetime.ts";

function setup(expiresIn: number) {
  const clock = fakeClock();
  let fire: (() => void) | null = null;
  const deadlines = new Deadlines({
    now: clock.now,
    setTimer: (fn) => (fire = fn, 1),
    clearTimer: () => void (fire = null),
  });
  const events: string[] = [];
  const life = new TokenLifetime({
    expiresAt: clock.now() + expiresIn,
    graceMs: 1_000,
    now: clock.now,
    deadlines,
    onExpiry: () => events.push("reauth"),
    onGraceOver: () => events.push("close"),
  });
  const advance = (ms: number) => {
    clock.advance(ms);
    fire?.();
  };
  return { life, deadlines, events, advance, clock };
}

Deno.test("TokenLifetime asks for a reauth at expiry and closes after the grace period", () => {
  const { life, events, advance, deadlines } = setup(5_000);
  life.start();
  advance(4_900);
  assert.deepEqual(events, []);
  advance(100);
  assert.deepEqual(events, ["reauth"]);
  advance(999);
  assert.deepEqual(events, ["reauth"]);
  advance(1);
  assert.deepEqual(events, ["reauth", "close"]);
  assert.equal(deadlines.size, 0);
});

Deno.test("TokenLifetime.renew ends the grace period and re-arms the expiry", () => {
  const { life, events, advance, clock } = setup(1_000);
  life.start();
  advance(1_000);
  assert.deepEqual(events, ["reauth"]);
  life.renew(clock.now() + 10_000);
  advance(2_000);
  assert.deepEqual(events, ["reauth"], "no close after a renewal");
  advance(8_000);
  assert.deepEqual(events, ["reauth", "reauth"]);
});

Deno.test("TokenLifetime.stop leaves nothing scheduled and runs no callback", () => {
  const { life, events, advance, deadlines } = setup(1_000);
  life.start();
  assert.equal(deadlines.size, 1);
  life.stop();
  assert.equal(deadlines.size, 0);
  advance(5_000);
  assert.deepEqual(events, []);
});
