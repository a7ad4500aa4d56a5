/**
 * What follows every champion switch, from whichever process made it (the
 * training task, the activate and rollback routes): the rescoring of open
 * leads is queued (one task per activation, idempotent), then every channel
 * is notified. Processes pick the new model up by themselves
 * (champion.ts).
 *
 * @module
 */
import type { ModelNotifier } from "./notify.ts";
import type { ChampionSwitch } from "./registry.ts";

/** What {@linkcode afterSwitch} needs. */
export interface DeployServices {
  notify: ModelNotifier;
  /** Queues `rescore_leads` for the activation (idempotency key `rescore:<id>`). */
  enqueueRescore: (activationId: number) => Promise<unknown>;
}

/** Queues the rescoring and notifies; nothing for a no-op switch. */
export async function afterSwitch(
  s: DeployServices,
  done: ChampionSwitch,
  actor: string,
): Promise<void> {
  if (done.activation_id === null) return;
  await s.enqueueRescore(done.activation_id);
  await s.notify({
    type: done.action === "rollback" ? "model.rolled_back" : "model.activated",
    version: done.version,
    population: done.population,
    previous: done.previous,
    actor,
  });
}
