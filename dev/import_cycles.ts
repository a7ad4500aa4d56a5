/**
 * `deno task cycles`: fails when modules of the repository import each other
 * in a circle, type-only imports included. A cycle makes module evaluation
 * order matter (a value read before its module ran is `undefined`), and a
 * type-only cycle is where a value cycle grows from; both also tie modules
 * that should be separable. The module graph comes from `deno info --json`,
 * which resolves imports exactly as `deno run`/`deno check` do.
 *
 * @module
 */

/** Folders whose modules are checked. */
export const SOURCE_FOLDERS = [
  "edge",
  "workers",
  "shared",
  "dev",
  "bench",
  "tests",
  "deploy",
  "testing",
];

const ROOT = new URL("../", import.meta.url);

/** Module → the modules it imports (code or type-only), all inside the repository. */
export type ImportGraph = Map<string, Set<string>>;

interface InfoDependency {
  code?: { specifier?: string };
  type?: { specifier?: string };
}

interface InfoModule {
  specifier: string;
  dependencies?: InfoDependency[];
}

async function typescriptFiles(dir: string, out: string[]): Promise<void> {
  for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) await typescriptFiles(path, out);
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
}

/** The import graph of every module under {@linkcode SOURCE_FOLDERS}, from `deno info --json`. */
export async function repositoryImportGraph(): Promise<ImportGraph> {
  const files: string[] = [];
  for (const dir of SOURCE_FOLDERS) await typescriptFiles(dir, files);
  // One synthetic root importing every module gives the whole graph in one call.
  const root = "data:application/typescript," +
    files.map((f) => `import ${JSON.stringify(new URL(f, ROOT).href)};`).join("");
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", root],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno info failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: InfoModule[] };
  const inside = (s: string | undefined): s is string => !!s && s.startsWith(ROOT.href);
  const graph: ImportGraph = new Map();
  for (const m of info.modules) {
    if (!inside(m.specifier)) continue;
    const deps = new Set<string>();
    for (const d of m.dependencies ?? []) {
      for (const target of [d.code?.specifier, d.type?.specifier]) {
        if (inside(target)) deps.add(relative(target));
      }
    }
    graph.set(relative(m.specifier), deps);
  }
  return graph;
}

function relative(specifier: string): string {
  return specifier.slice(ROOT.href.length);
}

/**
 * The import cycles of `graph`: one per strongly connected component that
 * holds a cycle, each as a path `[a, b, …, a]` through it (Tarjan's algorithm).
 */
export function findCycles(graph: ImportGraph): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  function visit(v: string): void {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) components.push(component);
    }
  }
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return components.map((c) => cycleThrough(graph, new Set(c)));
}

/** A shortest cycle through the first (sorted) module of a component, for the report. */
function cycleThrough(graph: ImportGraph, component: Set<string>): string[] {
  const start = [...component].sort()[0]!;
  const previous = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const v = queue.shift()!;
    for (const w of [...(graph.get(v) ?? [])].sort()) {
      if (!component.has(w)) continue;
      if (w === start) {
        const path = [v];
        while (path[0] !== start) path.unshift(previous.get(path[0]!)!);
        return [...path, start];
      }
      if (!previous.has(w)) {
        previous.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start, start];
}

if (import.meta.main) {
  const graph = await repositoryImportGraph();
  const cycles = findCycles(graph);
  for (const cycle of cycles) console.error(`import cycle: ${cycle.join(" → ")}`);
  if (cycles.length > 0) {
    console.error("Move the shared types or values into a module that imports neither side.");
  }
  console.error(`${graph.size} modules, ${cycles.length} import cycle(s)`);
  if (cycles.length > 0) Deno.exit(1);
}
