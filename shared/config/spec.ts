/**
 * How a configuration area is declared: each variable once (name as the key,
 * zod schema, default as written in the environment, description, secret
 * flag), next to the function that maps the parsed values into its part of
 * the typed configuration. The `Config` type of shared/config/mod.ts is
 * inferred from these functions, so adding a variable is one edit in one area
 * module (docs/configuration.md, Adding a variable).
 *
 * @module
 */
import { z } from "zod";

/** Description of one environment variable. */
export interface VariableSpec {
  name: string;
  /** Title of the area module that declares it (the reference's heading). */
  area: string;
  description: string;
  /** Default as written in the environment; undefined = required (unless optional). */
  default?: string;
  /** May be absent with no default. */
  optional?: boolean;
  /** Secret: may come from `NAME_FILE`; never echoed. */
  secret?: boolean;
  schema: z.ZodType;
}

/** One variable as an area declares it (the key of its entry is the name). */
export type Declaration = Omit<VariableSpec, "name" | "area">;

/** An area's variables by name, in the order of the configuration reference. */
export type Declarations = Record<string, Declaration>;

/** The parsed value of every declared variable; optional ones may be undefined. */
export type Values<D extends Declarations> = {
  [K in keyof D]: D[K] extends { optional: true } ? z.output<D[K]["schema"]> | undefined
    : z.output<D[K]["schema"]>;
};

/** One configuration area: its variables and its part of the typed configuration. */
export interface Area<D extends Declarations, C> {
  title: string;
  variables: D;
  /** Areas whose values `build` reads besides its own. */
  uses: readonly AnyArea[];
  /** Called with every variable's parsed value once all are valid. */
  build(values: Values<D> & Record<string, unknown>): C;
}

// deno-lint-ignore no-explicit-any
type AnyArea = Area<any, unknown>;

type UnionToIntersection<U> = (U extends unknown ? (u: U) => void : never) extends
  (i: infer I) => void ? I : never;

/** The values of the areas in `Us`, together. */
type UsedValues<Us extends readonly AnyArea[]> = UnionToIntersection<
  { [I in keyof Us]: Us[I] extends Area<infer E, unknown> ? Values<E> : never }[number]
>;

/**
 * Declares an area. `uses` names other areas whose values `build` reads (e.g.
 * the queue's task feed takes the live feed's history limits); their
 * variables stay declared, documented and parsed in their own area.
 */
export function defineArea<
  const D extends Declarations,
  C,
  const Us extends readonly AnyArea[] = [],
>(
  title: string,
  variables: D,
  uses: Us,
  build: (values: Values<D> & UsedValues<Us>) => C,
): Area<D, C> {
  return { title, variables, uses, build: build as Area<D, C>["build"] };
}

/** The variables of `areas` in declaration order, as the reference lists them. */
export function variablesOf(areas: readonly AnyArea[]): VariableSpec[] {
  return areas.flatMap((a) =>
    Object.entries(a.variables as Declarations).map(([name, spec]) => ({
      name,
      area: a.title,
      ...spec,
    }))
  );
}

export const port = z.coerce.number().int().min(0).max(65535);
export const positiveInt = z.coerce.number().int().positive();
export const bool = z.enum(["true", "false", "1", "0"]).transform((v) => v === "true" || v === "1");
export const httpUrl = z.url({ protocol: /^https?$/ });
/** Whole days, up to 100 years (retention windows). */
export const days = z.coerce.number().int().min(1).max(36_500);
/** Milliseconds per day (day-valued variables become milliseconds in the configuration). */
export const DAY_MS = 86_400_000;
