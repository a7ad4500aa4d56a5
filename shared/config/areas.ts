/**
 * Every configuration area, in the order of the configuration reference, and
 * the types inferred from them: `Config` is what the areas' `build` functions
 * return, together; `ConfigValues` is every variable's parsed value.
 *
 * @module
 */
import { analytics } from "./analytics.ts";
import { appointments } from "./appointments.ts";
import { auth } from "./auth.ts";
import { breakers } from "./breakers.ts";
import { core } from "./core.ts";
import { database } from "./database.ts";
import { email } from "./email.ts";
import { leads } from "./leads.ts";
import { liveFeed } from "./live_feed.ts";
import { observability } from "./observability.ts";
import { perimeter } from "./perimeter.ts";
import { queue } from "./queue.ts";
import { rateLimits } from "./rate_limits.ts";
import { redis } from "./redis.ts";
import { scoring } from "./scoring.ts";
import { secrets } from "./secrets.ts";
import {
  type Area,
  type Declarations,
  type Values,
  variablesOf,
  type VariableSpec,
} from "./spec.ts";

/** The areas, in the order the reference (and a list of problems) names their variables. */
export const AREAS = [
  core,
  redis,
  database,
  queue,
  observability,
  analytics,
  auth,
  rateLimits,
  breakers,
  perimeter,
  email,
  appointments,
  leads,
  liveFeed,
  secrets,
  scoring,
] as const;

type Areas = (typeof AREAS)[number];

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends
  (i: infer I) => void ? I : never;

type Flatten<T> = { [K in keyof T]: T[K] };

/** The validated configuration, built once per process and passed down. */
export type Config = Flatten<
  UnionToIntersection<Areas extends Area<Declarations, infer C> ? C : never>
>;

/** Every variable's parsed value, by name. */
export type ConfigValues = Flatten<
  UnionToIntersection<Areas extends Area<infer D, unknown> ? Values<D> : never>
>;

/** Every variable the platform reads, in the order of the configuration reference. */
export const VARIABLES: readonly VariableSpec[] = variablesOf(AREAS);
