/**
 * The lifetime of a live-feed socket's token. At the token's expiry the
 * client is asked for a fresh one (`onExpiry`, a `reauth` frame); when none
 * has arrived after the grace period, `onGraceOver` closes the socket (4001).
 * A fresh token (`renew`) ends the grace period and re-arms the expiry.
 * Both deadlines live in the hub's shared {@linkcode Deadlines}, not in
 * timers of their own.
 *
 * @module
 */
import type { Deadline, Deadlines } from "./deadlines.ts";

/** Options for {@linkcode TokenLifetime}. */
export interface TokenLifetimeOptions {
  /** Token expiry, epoch ms. */
  expiresAt: number;
  /** Time between the reauth request and the close, ms. */
  graceMs: number;
  now: () => number;
  /** Where the deadlines wait (one per hub). */
  deadlines: Deadlines;
  /** The token expired: ask the client for a fresh one. */
  onExpiry: () => void;
  /** The grace period passed without a fresh token. */
  onGraceOver: () => void;
}

/** One socket's token expiry and reauth grace deadlines. */
export class TokenLifetime {
  readonly #options: TokenLifetimeOptions;
  #expiresAt: number;
  #expiry: Deadline | undefined;
  #grace: Deadline | undefined;
  #stopped = false;

  constructor(options: TokenLifetimeOptions) {
    this.#options = options;
    this.#expiresAt = options.expiresAt;
  }

  /** The current token's expiry, epoch ms. */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** Arms the expiry timer (the socket is open). */
  start(): void {
    this.#armExpiry();
  }

  /** A fresh token was accepted: no close pending, the expiry re-armed. */
  renew(expiresAt: number): void {
    this.#expiresAt = expiresAt;
    this.#options.deadlines.cancel(this.#grace);
    this.#grace = undefined;
    this.#armExpiry();
  }

  /** The socket is over: deadlines off, no callback runs any more. */
  stop(): void {
    this.#stopped = true;
    this.#options.deadlines.cancel(this.#expiry);
    this.#options.deadlines.cancel(this.#grace);
    this.#expiry = this.#grace = undefined;
  }

  /** At the token's expiry: ask for a fresh one, give up after the grace period. */
  #armExpiry(): void {
    const { deadlines } = this.#options;
    deadlines.cancel(this.#expiry);
    this.#expiry = deadlines.add(this.#expiresAt, () => {
      this.#expiry = undefined;
      if (this.#stopped) return;
      if (this.#expiresAt > this.#options.now()) return this.#armExpiry();
      this.#options.onExpiry();
      // Sending the reauth request may itself close the socket (a full send queue).
      if (this.#stopped) return;
      deadlines.cancel(this.#grace);
      this.#grace = deadlines.add(this.#options.now() + this.#options.graceMs, () => {
        this.#grace = undefined;
        if (this.#stopped || this.#expiresAt > this.#options.now()) return;
        this.#options.onGraceOver();
      });
    });
  }
}
