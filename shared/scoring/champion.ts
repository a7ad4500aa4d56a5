/**
 * The champions as each process sees them, one per population (pre-reply
 * and replied leads, docs/lead-scoring.md §Populations): a lead is scored by
 * its population's champion, or by the heuristic while that population has
 * none. A watcher checks the registry's champion versions every `intervalMs`
 * (one indexed lookup) and loads a model when its version changed, so every edge and worker converges on a new
 * champion within one interval of the activation without a restart — and a
 * process that was down or partitioned during the switch converges at its
 * next check; there is no notice to miss. Scoring never waits on I/O: it
 * uses the model in memory, or the heuristic while there is no champion.
 *
 * @module
 */
import type { Pool } from "@neondatabase/serverless";
import type { Logger } from "../log.ts";
import { type FeatureSource, type Population, populationOf, POPULATIONS } from "./features.ts";
import { heuristicScore } from "./heuristic.ts";
import { type Contribution, explainLead, type ScoringModel } from "./model.ts";
import { championVersions, loadChampion } from "./registry.ts";
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

/** The champion of each population that has one. */
export type Champions = Partial<Record<Population, { version: number; model: ScoringModel }>>;

/** Scores `lead` with its population's champion (the heuristic when there is none). */
export function scoreStaged(
  champions: Champions,
  lead: FeatureSource,
  now: number,
): LeadScoreResult {
  return scoreWith(champions[populationOf(lead)] ?? null, lead, now);
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
  #champions: Champions = {};
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking: Promise<void> | null = null;

  constructor(options: ChampionWatcherOptions) {
    this.#sql = options.sql;
    this.#log = options.log;
    this.#intervalMs = options.intervalMs ?? 2000;
  }

  /** The champion versions in memory; a population without one scores with the heuristic. */
  get versions(): Partial<Record<Population, number>> {
    return Object.fromEntries(
      Object.entries(this.#champions).map(([p, c]) => [p, c.version]),
    );
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

  /** Compares the registry's champion versions with those in memory; loads new ones. */
  check(): Promise<void> {
    this.#checking ??= this.#check().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<void> {
    try {
      const versions = await championVersions(this.#sql);
      const next: Champions = { ...this.#champions };
      for (const population of POPULATIONS) {
        const version = versions[population] ?? null;
        const from = this.#champions[population]?.version ?? null;
        if (version === from) continue;
        const champion = version === null ? null : await loadChampion(this.#sql, population);
        if (champion) next[population] = { version: champion.version, model: champion.model };
        else delete next[population];
        this.#log.info("lead-scoring champion changed", {
          population,
          from,
          to: champion?.version ?? null,
        });
      }
      this.#champions = next;
    } catch (err) {
      this.#log.warn("lead-scoring champion check failed", { err });
    }
  }

  score(lead: FeatureSource, now: number): LeadScoreResult {
    return scoreStaged(this.#champions, lead, now);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#checking;
  }
}
