/**
 * The champion as each process sees it. A watcher checks the registry's
 * champion version every `intervalMs` (one indexed lookup) and loads the
 * model when it changed, so every edge and worker converges on a new
 * champion within one interval of the activation without a restart — and a
 * process that was down or partitioned during the switch converges at its
 * next check; there is no notice to miss. Scoring never waits on I/O: it
 * uses the model in memory, or the heuristic while there is no champion.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { Logger } from "../log.ts";
import type { FeatureSource } from "./features.ts";
import { heuristicScore } from "./heuristic.ts";
import { type Contribution, explainLead, type ScoringModel } from "./model.ts";
import { championVersion, loadChampion } from "./registry.ts";
import { bounded } from "../deadline.ts";

/** A lead's score and where it came from. */
export interface LeadScoreResult {
  lead_score: number;
  /** `manual`: a caller gave the score (createLead keeps it). */
  source: "model" | "heuristic" | "manual";
  /** The champion's version; null otherwise. */
  model_version: number | null;
  /** The features that moved the score most; empty for the heuristic. */
  factors: Contribution[];
}

/** Scores leads with the current champion. */
export interface LeadScorer {
  score(lead: FeatureSource, now: number): LeadScoreResult;
}

/** Scores `lead` with `champion`, or with the heuristic when it is null. */
export function scoreWith(
  champion: { version: number; model: ScoringModel } | null,
  lead: FeatureSource,
  now: number,
): LeadScoreResult {
  if (champion === null) {
    return {
      lead_score: heuristicScore(lead),
      source: "heuristic",
      model_version: null,
      factors: [],
    };
  }
  const { lead_score, factors } = explainLead(champion.model, lead, now);
  return { lead_score, source: "model", model_version: champion.version, factors };
}

/** Options of {@linkcode ChampionWatcher}. */
export interface ChampionWatcherOptions {
  sql: Pool;
  log: Logger;
  /** How often the champion version is checked, ms. @default 2000 */
  intervalMs?: number;
}

/** Follows the registry's champion (see the module comment). */
export class ChampionWatcher implements LeadScorer, AsyncDisposable {
  #sql: Pool;
  #log: Logger;
  #intervalMs: number;
  #champion: { version: number; model: ScoringModel } | null = null;
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;

  constructor(options: ChampionWatcherOptions) {
    this.#sql = options.sql;
    this.#log = options.log;
    this.#intervalMs = options.intervalMs ?? 2000;
  }

  /** The champion's version in memory (null: heuristic). */
  get version(): number | null {
    return this.#champion?.version ?? null;
  }

  /**
   * Checks once now, then every interval. Errors are logged, never thrown: the
   * last model stays. The first check is awaited for at most one interval: a
   * process must start serving while Postgres is away (an edge whose database
   * hung never logged "edge listening"), scoring with the heuristic until the
   * check answers.
   */
  async start(): Promise<void> {
    this.#timer ??= setInterval(() => void this.check(), this.#intervalMs);
    await bounded(this.check(), this.#intervalMs, "the first lead-scoring champion check")
      .catch((err) => this.#log.warn("lead-scoring champion not loaded yet", { err }));
  }

  /** Compares the registry's champion version with the one in memory; loads a new one. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<void> {
    try {
      const version = await championVersion(this.#sql);
      if (version === this.version) return;
      const champion = version === null ? null : await loadChampion(this.#sql);
      const from = this.version;
      this.#champion = champion;
      this.#log.info("lead-scoring champion changed", { from, to: champion?.version ?? null });
    } catch (err) {
      this.#log.warn("lead-scoring champion check failed", { err });
    }
  }

  score(lead: FeatureSource, now: number): LeadScoreResult {
    return scoreWith(this.#champion, lead, now);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#checking;
  }
}
