import assert from "node:assert/strict";
import {
  allowedTransitions,
  assertTransition,
  canTransition,
  IllegalTransitionError,
  isOutreachStatus,
  OUTREACH_STATUSES,
  type OutreachStatus,
  stepsToReach,
} from "./status.ts";

const ALLOWED = new Set([
  "new→contacted",
  "contacted→responded",
  "responded→meeting_scheduled",
  "meeting_scheduled→client",
  "new→not_interested",
  "contacted→not_interested",
  "responded→not_interested",
  "meeting_scheduled→not_interested",
  "client→not_interested",
]);

Deno.test("assertTransition() allows exactly the single forward steps and any → not_interested", () => {
  let checked = 0;
  for (const from of OUTREACH_STATUSES) {
    for (const to of OUTREACH_STATUSES) {
      checked++;
      const edge = `${from}→${to}`;
      if (from === to) {
        assert.doesNotThrow(() => assertTransition(from, to), `${edge} is a no-op`);
        assert.ok(canTransition(from, to));
      } else if (ALLOWED.has(edge)) {
        assert.doesNotThrow(() => assertTransition(from, to), edge);
        assert.ok(canTransition(from, to), edge);
        assert.ok(allowedTransitions(from).includes(to), edge);
      } else {
        assert.ok(!canTransition(from, to), edge);
        assert.ok(!allowedTransitions(from).includes(to), edge);
        assert.throws(() => assertTransition(from, to), (err: unknown) => {
          assert.ok(err instanceof IllegalTransitionError, edge);
          assert.equal(err.name, "IllegalTransitionError");
          assert.equal(err.code, "illegal-transition");
          assert.equal(err.status, 409);
          assert.deepEqual(err.details.allowed, [...allowedTransitions(from)]);
          assert.equal(err.details.from, from);
          assert.equal(err.details.to, to);
          return true;
        });
      }
    }
  }
  assert.equal(checked, 36);
});

Deno.test("allowedTransitions() lists the next step and not_interested; not_interested is terminal", () => {
  assert.deepEqual(allowedTransitions("new"), ["contacted", "not_interested"]);
  assert.deepEqual(allowedTransitions("client"), ["not_interested"]);
  assert.deepEqual(allowedTransitions("not_interested"), []);
  assert.throws(() => assertTransition("not_interested", "new"), {
    code: "illegal-transition",
    message: 'Cannot move lead from "not_interested" to "new"',
  });
});

Deno.test("IllegalTransitionError names the allowed next states in its detail", () => {
  const err = new IllegalTransitionError("new", "client", { leadId: "l1" });
  assert.equal(
    err.details.detail,
    'From "new" the allowed next states are: contacted, not_interested',
  );
  assert.equal(err.details.lead_id, "l1");
});

Deno.test("isOutreachStatus() accepts only the six statuses", () => {
  for (const s of OUTREACH_STATUSES) assert.ok(isOutreachStatus(s));
  for (const s of ["", "New", "lost", null, 1]) assert.ok(!isOutreachStatus(s));
});

Deno.test("stepsToReach() walks forward one step at a time and is empty once reached", () => {
  const steps = (from: OutreachStatus, to: OutreachStatus) =>
    stepsToReach(from, to).map(([a, b]) => `${a}→${b}`);
  assert.deepEqual(steps("contacted", "meeting_scheduled"), [
    "contacted→responded",
    "responded→meeting_scheduled",
  ]);
  assert.deepEqual(steps("new", "contacted"), ["new→contacted"]);
  assert.deepEqual(steps("responded", "contacted"), []);
  assert.deepEqual(steps("client", "meeting_scheduled"), []);
  assert.deepEqual(steps("contacted", "contacted"), []);
  assert.deepEqual(steps("not_interested", "contacted"), []);
  assert.deepEqual(steps("client", "not_interested"), ["client→not_interested"]);
  // Every walked step is itself an allowed transition.
  for (const from of OUTREACH_STATUSES) {
    for (const to of OUTREACH_STATUSES) {
      for (const [a, b] of stepsToReach(from, to)) assert.ok(ALLOWED.has(`${a}→${b}`));
    }
  }
});
