/**
 * The Deno permissions the platform's processes run with. Production starts
 * them through deno.json's tasks (`deno task edge`, `worker`, `migrate`,
 * `seed`: the Containerfile and deploy.yaml run those tasks), so the tasks are
 * where the permissions are granted; the spawners of the dev stack, the chaos
 * cluster and the tests start the same entry points with this list (plus the
 * extras each names, e.g. a worker's `--allow-write=<outbox>`), and
 * app_permissions_test.ts fails when the list and the tasks disagree.
 *
 * @module
 */

/** What every entry point gets: network, environment, files read, system info. */
export const APP_PERMISSIONS: readonly string[] = [
  "--allow-net",
  "--allow-env",
  "--allow-read",
  "--allow-sys",
];

/** `deno run` arguments: {@linkcode APP_PERMISSIONS}, then `extra` flags, `entry`, `args`. */
export function denoRunArgs(
  entry: string,
  extra: readonly string[] = [],
  args: readonly string[] = [],
): string[] {
  return ["run", ...APP_PERMISSIONS, ...extra, entry, ...args];
}
