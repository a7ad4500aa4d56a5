/**
 * The hub's writes to the client registry (shared/ws/client_registry.ts),
 * coalesced: sockets that open (or close) within `delayMs` of each other are
 * registered (or removed) in one script call, not one Redis round trip per
 * socket. A round trip per upgrade was most of the edge memory an idle
 * connection cost in bench:ws (docs/benchmarks.md, design measurements), and
 * reconnect storms open thousands of sockets at once.
 *
 * Order per client: a removal never overtakes its registration (it waits for
 * the call that registers it), and a socket that closes before its
 * registration went out is never registered at all. Nothing is kept per
 * client once its registration has landed.
 *
 * @module
 */
import type { Logger } from "../../shared/log.ts";
import type { ClientInfo, ClientRegistry } from "../../shared/ws/client_registry.ts";

/** Options for {@linkcode RegistryBatch}. */
export interface RegistryBatchOptions {
  registry: Pick<ClientRegistry, "touch" | "remove">;
  log: Logger;
  /** How long a write waits for others to join it, ms. @default 5 */
  delayMs?: number;
}

/** Coalesced registrations and removals of one hub's clients. */
export class RegistryBatch {
  readonly #registry: Pick<ClientRegistry, "touch" | "remove">;
  readonly #log: Logger;
  readonly #delayMs: number;
  /** Registrations not sent yet, by client id. */
  #toTouch = new Map<string, ClientInfo>();
  #toRemove: string[] = [];
  /** Clients whose registration call is in flight, and that call. */
  readonly #touching = new Map<string, Promise<void>>();
  readonly #calls = new Set<Promise<void>>();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(options: RegistryBatchOptions) {
    this.#registry = options.registry;
    this.#log = options.log;
    this.#delayMs = options.delayMs ?? 5;
  }

  /** Registers client `id` with the next call. */
  register(id: string, info: ClientInfo): void {
    this.#toTouch.set(id, info);
    this.#schedule();
  }

  /** Removes client `id`: after its registration landed, or instead of it when not sent yet. */
  unregister(id: string): void {
    if (this.#toTouch.delete(id)) return;
    const touching = this.#touching.get(id);
    if (touching === undefined) {
      this.#toRemove.push(id);
      this.#schedule();
      return;
    }
    // Behind the call that registers it, or a late registration would outlive the socket.
    this.#track(touching.then(() => this.#remove([id])));
  }

  /** Sends what waits now and resolves when every call started so far has settled. */
  async flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#send();
    while (this.#calls.size > 0) await Promise.all([...this.#calls]);
  }

  /** Drops what has not been sent (the caller removes every client itself). */
  discard(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#toTouch.clear();
    this.#toRemove = [];
  }

  #schedule(): void {
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#send();
    }, this.#delayMs);
  }

  #send(): void {
    if (this.#toTouch.size > 0) {
      const batch = this.#toTouch;
      this.#toTouch = new Map();
      const call = this.#registry.touch([...batch].map(([id, info]) => ({ id, info }))).catch(
        (err) =>
          this.#log.warn("live feed client registration failed", { err, clients: batch.size }),
      ).finally(() => {
        for (const id of batch.keys()) this.#touching.delete(id);
      });
      for (const id of batch.keys()) this.#touching.set(id, call);
      this.#track(call);
    }
    if (this.#toRemove.length > 0) {
      const ids = this.#toRemove;
      this.#toRemove = [];
      this.#track(this.#remove(ids));
    }
  }

  #remove(ids: string[]): Promise<void> {
    return this.#registry.remove(ids).catch((err) =>
      this.#log.warn("live feed client unregistration failed", { err, clients: ids.length })
    );
  }

  #track(call: Promise<void>): void {
    this.#calls.add(call);
    void call.finally(() => this.#calls.delete(call));
  }
}
