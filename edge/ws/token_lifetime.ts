/**
 * The lifetime of a live-feed socket's token. At the token's expiry the
 * client is asked for a fresh one (`onExpiry`, a `reauth` frame); when none
 * has arrived after the grace period, `onGraceOver` closes the socket (4001).
 * A fresh token (`renew`) ends the grace period and re-arms the expiry.
 *
 * @module
 */

/** Options for {@linkcode TokenLifetime}. */
export interface TokenLifetimeOptions {
  /** Token expiry, epoch ms. */
  expiresAt: number;
  /** Time between the reauth request and the close, ms. */
  graceMs: number;
  now: () => number;
  /** The token expired: ask the client for a fresh one. */
  onExpiry: () => void;
  /** The grace period passed without a fresh token. */
  onGraceOver: () => void;
}

// setTimeout's largest delay; tokens may live longer (up to 30 days).
const MAX_TIMER_MS = 2 ** 31 - 1;

/** One socket's token expiry and reauth grace timers. */
export class TokenLifetime {
  readonly #options: TokenLifetimeOptions;
  #expiresAt: number;
  #expiryTimer: ReturnType<typeof setTimeout> | undefined;
  #graceTimer: ReturnType<typeof setTimeout> | undefined;
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

  /** A fresh token was accepted: no close pending, the expiry timer re-armed. */
  renew(expiresAt: number): void {
    this.#expiresAt = expiresAt;
    clearTimeout(this.#graceTimer);
    this.#graceTimer = undefined;
    this.#armExpiry();
  }

  /** The socket is over: timers off, no callback runs any more. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#expiryTimer);
    clearTimeout(this.#graceTimer);
  }

  /** At the token's expiry: ask for a fresh one, give up after the grace period. */
  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    const wait = this.#expiresAt - this.#options.now();
    this.#expiryTimer = setTimeout(() => {
      if (this.#stopped) return;
      if (this.#expiresAt > this.#options.now()) return this.#armExpiry();
      this.#options.onExpiry();
      // Sending the reauth request may itself close the socket (a full send queue).
      if (this.#stopped) return;
      clearTimeout(this.#graceTimer);
      this.#graceTimer = setTimeout(() => {
        if (this.#stopped || this.#expiresAt > this.#options.now()) return;
        this.#options.onGraceOver();
      }, this.#options.graceMs);
    }, Math.min(Math.max(0, wait), MAX_TIMER_MS));
  }
}
