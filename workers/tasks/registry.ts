/**
 * Task type → handler, one file per task type in this folder. Every catalog
 * type a worker should run is listed here; the runner refuses handlers that
 * have no catalog entry. Handlers that need collaborators (providers,
 * breakers, the queue) are built from {@linkcode WorkerServices}.
 *
 * @module
 */
import type { BreakerRegistry } from "../../shared/breakers/registry.ts";
import type { Config } from "../../shared/config/mod.ts";
import type { EmailProvider } from "../../shared/email/provider.ts";
import type { TaskQueue } from "../../shared/queue/queue.ts";
import type { LeadScorer } from "../../shared/scoring/champion.ts";
import type { DeploymentAlert } from "../../shared/scoring/notify.ts";
import type { Handler } from "../runner.ts";
import { applyRetentionHandler } from "./apply_retention.ts";
import { bookAppointmentHandler } from "./book_appointment.ts";
import { countBookingOutcomes } from "./booking_outcomes.ts";
import { countEmailOutcomes } from "./email_outcomes.ts";
import { deliverAlertHandler } from "./deliver_alert.ts";
import { forwardRequestHandlers } from "./forward_request.ts";
import { leadWriteHandler } from "./lead_write.ts";
import * as noop from "./noop.ts";
import { refreshLeadMetricsHandler } from "./refresh_lead_metrics.ts";
import { rescoreLeadsHandler } from "./rescore_leads.ts";
import { retrainLeadModelHandler } from "./retrain_lead_model.ts";
import { scrapeLeadsHandler } from "./scrape_leads.ts";
import { sendEmailHandler } from "./send_email.ts";

/** What the handlers are built from (composition root or test). */
export interface WorkerServices {
  config: Config;
  queue: TaskQueue;
  breakers: BreakerRegistry;
  email: EmailProvider;
  /**
   * Scores leads the tasks write: created, updated, imported, contacted,
   * booked (the worker's ChampionWatcher). @default none: not scored
   */
  scorer?: LeadScorer;
  /** Queues model deployment alerts (shared/alerts/producers.ts). @default none */
  sendDeploymentAlert?: DeploymentAlert;
}

/** The handlers of the platform's task types. */
export function createHandlers(s: WorkerServices): Record<string, Handler> {
  // The HTTP API provider already calls through the breaker's fetch; wrapping
  // it again would count every outcome twice.
  const emailBreaker = s.config.email.provider === "http_api" ? undefined : s.breakers.get("email");
  return {
    noop: noop.handle,
    send_email: countEmailOutcomes(
      sendEmailHandler({
        provider: s.email,
        ...(emailBreaker ? { breaker: emailBreaker } : {}),
        from: s.config.email.from,
        messageIdDomain: s.config.email.messageIdDomain,
        unsubscribeSecret: () => s.config.email.unsubscribeSecret,
        publicBaseUrl: s.config.publicBaseUrl,
        ...(s.scorer ? { scorer: s.scorer } : {}),
      }),
      s.config.email.provider,
    ),
    book_appointment: countBookingOutcomes(bookAppointmentHandler({
      queue: s.queue,
      ...(s.scorer ? { scorer: s.scorer } : {}),
    })),
    apply_lead_write: leadWriteHandler({
      breaker: s.breakers.get("database"),
      lag: s.breakers.loopLag,
      ...(s.scorer ? { scorer: s.scorer } : {}),
    }),
    scrape_leads: scrapeLeadsHandler({
      places: s.config.places,
      placesBreaker: s.breakers.get("places"),
      defaultPhoneRegion: s.config.defaultPhoneRegion,
      ...(s.scorer ? { scorer: s.scorer } : {}),
    }),
    refresh_lead_metrics: refreshLeadMetricsHandler({
      lateWindowMs: s.config.analytics.refreshLateWindowMs,
    }),
    apply_retention: applyRetentionHandler({ queue: s.queue, analytics: s.config.analytics }),
    retrain_lead_model: retrainLeadModelHandler({
      ml: s.config.ml,
      queue: s.queue,
      ...(s.sendDeploymentAlert ? { sendDeploymentAlert: s.sendDeploymentAlert } : {}),
    }),
    deliver_alert: deliverAlertHandler({
      config: () => s.config,
      namespace: s.queue.settings.namespace,
    }),
    rescore_leads: rescoreLeadsHandler({ chunkSize: s.config.ml.rescoreChunk }),
    ...forwardRequestHandlers(s.config.upstreams, s.breakers),
  };
}
