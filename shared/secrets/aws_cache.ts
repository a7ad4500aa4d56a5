/**
 * A cache of AWS Secrets Manager values, done the way AWS's own caching
 * clients describe it and a little better: a value younger than `ttlMs` is
 * served from memory; an older one is served at once while ONE background
 * refresh runs; when AWS is unreachable the last good value keeps being served
 * (and the failure is logged without the value). Only a secret never fetched
 * makes a caller wait, and only then can a read fail.
 *
 * @module
 */
import { GetSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Logger } from "../log.ts";

/** Raised when a secret was never fetched and cannot be now. */
export class SecretUnavailableError extends Error {
  override name = "SecretUnavailableError";
  constructor(readonly secretId: string, options?: ErrorOptions) {
    super(`AWS secret ${secretId} could not be read`, options);
  }
}

/** Options for {@linkcode AwsSecretCache}. */
export interface AwsSecretCacheOptions {
  /** The SDK client (region, endpoint and credentials are its business). */
  client: Pick<SecretsManagerClient, "send">;
  /** Refresh in the background once a value is older than this. */
  ttlMs: number;
  log: Logger;
  /** @default Date.now */
  now?: () => number;
}

interface Entry {
  value: string;
  versionId: string | undefined;
  fetchedAt: number;
  refreshing: Promise<void> | null;
}

/** Secret strings by SecretId, refreshed in the background after `ttlMs`. */
export class AwsSecretCache {
  #client: AwsSecretCacheOptions["client"];
  #ttlMs: number;
  #log: Logger;
  #now: () => number;
  #entries = new Map<string, Entry>();
  #first = new Map<string, Promise<string>>();

  constructor(options: AwsSecretCacheOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError("AwsSecretCache: ttlMs must be positive");
    this.#client = options.client;
    this.#ttlMs = options.ttlMs;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  /** The secret's string (SecretString); waits only on the first read of `secretId`. */
  get(secretId: string): Promise<string> {
    const entry = this.#entries.get(secretId);
    if (entry) {
      if (this.#now() - entry.fetchedAt >= this.#ttlMs && !entry.refreshing) {
        entry.refreshing = this.#refresh(secretId, entry);
      }
      return Promise.resolve(entry.value);
    }
    let first = this.#first.get(secretId);
    if (!first) {
      first = this.#fetch(secretId).then((fetched) => {
        this.#entries.set(secretId, { ...fetched, fetchedAt: this.#now(), refreshing: null });
        return fetched.value;
      }).finally(() => this.#first.delete(secretId));
      this.#first.set(secretId, first);
    }
    return first;
  }

  /** Waits for the refreshes in flight (tests, shutdown). */
  async settle(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => e.refreshing));
  }

  async #refresh(secretId: string, entry: Entry): Promise<void> {
    try {
      const fetched = await this.#fetch(secretId);
      if (fetched.versionId !== entry.versionId) {
        this.#log.info("aws secret has a new version", { secret_id: secretId });
      }
      Object.assign(entry, fetched, { fetchedAt: this.#now() });
    } catch (err) {
      // Keep serving the last good value; try again after another TTL.
      entry.fetchedAt = this.#now();
      this.#log.warn("aws secret refresh failed; serving the last good value", {
        secret_id: secretId,
        error: errorName(err),
      });
    } finally {
      entry.refreshing = null;
    }
  }

  async #fetch(secretId: string): Promise<{ value: string; versionId: string | undefined }> {
    let out;
    try {
      out = await this.#client.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (err) {
      // The SDK's error carries the request id and code, never the value: keep it as cause.
      throw new SecretUnavailableError(secretId, { cause: err });
    }
    if (typeof out.SecretString !== "string") {
      throw new SecretUnavailableError(secretId, {
        cause: new TypeError("the secret has no SecretString (binary secrets are not used)"),
      });
    }
    return { value: out.SecretString, versionId: out.VersionId };
  }
}

function errorName(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.name : "unknown";
}
