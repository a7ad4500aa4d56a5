/**
 * The bounded send queue of one socket. A frame goes straight to the socket
 * while the socket's own buffer (`bufferedAmount`, bytes the runtime has not
 * yet handed to the kernel) is below `highWaterBytes`; otherwise it waits
 * here, and the hub's flush timer moves it on as the buffer drains. When
 * more than `maxBytes` or `maxMessages` wait, the client cannot keep up:
 * `onOverflow` runs once (the hub closes the socket with 4008) and the queue
 * drops everything. So one slow client holds at most about
 * `highWaterBytes + maxBytes` of server memory, never more.
 *
 * Every frame that never reaches the socket is reported to `onDrop` with why
 * (`ws_messages_dropped_total{reason}`): `closed` — the socket was no longer
 * open when the frame was due, or the frame was still waiting when the
 * connection ended; `slow_consumer` — discarded by the overflow.
 *
 * @module
 */

/** What the queue needs of a WebSocket. */
export interface SocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
}

/** Options for {@linkcode SendQueue}. */
export interface SendQueueOptions {
  /** Queued bytes (UTF-16 units, ≈ bytes for JSON text) allowed. @default 1_048_576 */
  maxBytes?: number;
  /** Queued frames allowed. @default 1000 */
  maxMessages?: number;
  /** Frames go straight to the socket while its buffer is below this. @default 65_536 */
  highWaterBytes?: number;
  /** Called once when a limit is exceeded. */
  onOverflow: () => void;
  /** Called with the number of frames dropped and why. @default none */
  onDrop?: (reason: DropReason, frames: number) => void;
}

/** Why frames never reached the socket. */
export type DropReason = "closed" | "slow_consumer";

/** Every {@linkcode DropReason}, for metrics that export each from 0. */
export const DROP_REASONS: readonly DropReason[] = ["closed", "slow_consumer"];

const OPEN = 1;

/** A socket's outgoing frames. */
export class SendQueue {
  readonly #socket: SocketLike;
  readonly #maxBytes: number;
  readonly #maxMessages: number;
  readonly #highWater: number;
  readonly #onOverflow: () => void;
  readonly #onDrop: (reason: DropReason, frames: number) => void;
  #frames: string[] = [];
  #head = 0;
  #bytes = 0;
  #overflowed = false;

  constructor(socket: SocketLike, options: SendQueueOptions) {
    this.#socket = socket;
    this.#maxBytes = options.maxBytes ?? 1_048_576;
    this.#maxMessages = options.maxMessages ?? 1000;
    this.#highWater = options.highWaterBytes ?? 65_536;
    this.#onOverflow = options.onOverflow;
    this.#onDrop = options.onDrop ?? (() => {});
  }

  /** Frames waiting. */
  get length(): number {
    return this.#frames.length - this.#head;
  }

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  /** True once a limit was exceeded; nothing is sent after that. */
  get overflowed(): boolean {
    return this.#overflowed;
  }

  /** Sends or queues `frame`; false when the queue overflowed (now or before). */
  push(frame: string): boolean {
    if (this.#overflowed) {
      this.#onDrop("slow_consumer", 1);
      return false;
    }
    if (this.length === 0 && this.#socket.bufferedAmount < this.#highWater) {
      return this.#send(frame);
    }
    this.#frames.push(frame);
    this.#bytes += frame.length;
    if (this.length > this.#maxMessages || this.#bytes > this.#maxBytes) {
      this.#overflow();
      return false;
    }
    return true;
  }

  /** Moves waiting frames to the socket while its buffer allows; true while frames remain. */
  flush(): boolean {
    while (this.length > 0 && !this.#overflowed && this.#socket.bufferedAmount < this.#highWater) {
      const frame = this.#frames[this.#head]!;
      this.#head++;
      this.#bytes -= frame.length;
      if (!this.#send(frame)) return false;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
      this.#frames = this.#frames.slice(this.#head);
      this.#head = 0;
    }
    return this.length > 0 && !this.#overflowed;
  }

  /**
   * The connection ended: the frames still waiting are dropped (reported as
   * `closed`) and nothing is sent after. Returns how many were dropped.
   */
  discard(): number {
    const left = this.length;
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
    if (left > 0) this.#onDrop("closed", left);
    return left;
  }

  #send(frame: string): boolean {
    if (this.#socket.readyState !== OPEN) {
      this.#onDrop("closed", 1);
      return false;
    }
    try {
      this.#socket.send(frame);
      return true;
    } catch {
      // closing under us: the close handler cleans up
      this.#onDrop("closed", 1);
      return false;
    }
  }

  #overflow(): void {
    this.#overflowed = true;
    this.#onDrop("slow_consumer", this.length);
    this.#frames = [];
    this.#head = 0;
    this.#bytes = 0;
    this.#onOverflow();
  }
}
