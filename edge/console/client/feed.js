// The live feed (docs/live-feed.md): one WebSocket to /v1/ws, the token in
// the `bearer` subprotocol (a browser cannot set headers on a WebSocket, and
// a query string would reach logs). After a drop it reconnects with backoff
// and resubscribes with `since` = the last offset seen per topic, so missed
// messages are replayed in order; when the history no longer covers the gap
// (`recovered: false`) the views reload their state instead.

const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 15000];

export class LiveFeed {
  #token;
  #topics;
  #handlers;
  #socket = null;
  #offsets = {};
  #attempt = 0;
  #timer = null;
  #stopped = false;

  /**
   * @param {{token: string, topics: string[], onMessage(frame): void,
   *   onStatus(status: "connecting"|"live"|"disconnected"|"expired", info?): void,
   *   onResync(topic): void}} options
   */
  constructor({ token, topics, ...handlers }) {
    this.#token = token;
    this.#topics = topics;
    this.#handlers = handlers;
  }

  start() {
    this.#stopped = false;
    this.#connect();
  }

  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.close(1000, "signed out");
    this.#socket = null;
  }

  #connect() {
    this.#handlers.onStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/ws`, ["bearer", this.#token]);
    this.#socket = socket;
    socket.onopen = () => {
      const since = { ...this.#offsets };
      socket.send(JSON.stringify({
        type: "subscribe",
        topics: this.#topics,
        ...(Object.keys(since).length > 0 ? { since } : {}),
      }));
    };
    socket.onmessage = (event) => this.#frame(JSON.parse(event.data));
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      if (this.#stopped) return;
      if (event.code === 4001 || event.code === 4003) {
        this.#handlers.onStatus("expired");
        return;
      }
      const delay = BACKOFF_MS[Math.min(this.#attempt, BACKOFF_MS.length - 1)];
      this.#attempt++;
      this.#handlers.onStatus("disconnected", { retryInMs: delay, code: event.code });
      this.#timer = setTimeout(() => this.#connect(), delay);
    };
  }

  #frame(frame) {
    switch (frame.type) {
      case "subscribed":
        this.#attempt = 0;
        if (frame.offset) this.#offsets[frame.topic] ??= frame.offset;
        if (frame.recovered === false && this.#offsets[frame.topic]) {
          this.#handlers.onResync(frame.topic);
        }
        this.#handlers.onStatus("live");
        break;
      case "message":
        this.#offsets[frame.topic.split(":")[0]] = frame.offset;
        this.#handlers.onMessage(frame);
        break;
      case "reauth":
        // Same token: the server closes with 4001 if it expired, and the
        // console asks for a new sign-in.
        this.#socket?.send(JSON.stringify({ type: "reauth", token: this.#token }));
        break;
      default:
        break;
    }
  }
}
