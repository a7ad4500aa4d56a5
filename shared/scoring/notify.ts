/**
 * Deployment notices: every champion switch (activation, rollback) and
 * every finished training run is told three ways — a log line, a message
 * on the live feed's `models` topic, and the alert webhook when one is
 * wired in. A failing channel is logged and never undoes the switch.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { Population } from "./features.ts";
import type { FeedPublisher } from "../ws/publisher.ts";

/** What happened. */
export type ModelEvent =
  | {
    type: "model.activated" | "model.rolled_back";
    version: number;
    /** The population whose champion switched (docs/lead-scoring.md §Populations). */
    population: Population;
    previous: number | null;
    actor: string;
  }
  | {
    type: "model.trained";
    version: number;
    population: Population;
    status: string;
    reason: string;
    roc_auc: number | null;
  }
  | { type: "model.rescored"; version: number; rows: number };

/**
 * The alert-webhook call point: the composition roots (edge/main.ts,
 * workers/main.ts) set it to shared/alerts/producers.ts's
 * `deploymentAlertSender` when ALERT_WEBHOOK_URL is set, which queues a
 * `deliver_alert` task; otherwise only the log and the feed are told.
 */
export type DeploymentAlert = (event: ModelEvent) => Promise<void>;

/** Options of {@linkcode createModelNotifier}. */
export interface ModelNotifierOptions {
  log: Logger;
  feed?: FeedPublisher;
  sendDeploymentAlert?: DeploymentAlert;
}

/** Tells every channel; resolves when all were tried. */
export type ModelNotifier = (event: ModelEvent) => Promise<void>;

/** Builds the notifier. */
export function createModelNotifier(options: ModelNotifierOptions): ModelNotifier {
  return async (event) => {
    options.log.info(`lead-scoring ${event.type}`, { ...event });
    const channels: [string, Promise<unknown> | undefined][] = [
      ["live feed", options.feed?.publish("models", event, { key: String(event.version) })],
      [
        "alert webhook",
        event.type === "model.rescored" ? undefined : options.sendDeploymentAlert?.(event),
      ],
    ];
    await Promise.all(channels.map(async ([name, sent]) => {
      try {
        await sent;
      } catch (err) {
        options.log.warn("lead-scoring notice not delivered", {
          channel: name,
          event: event.type,
          err,
        });
      }
    }));
  };
}
