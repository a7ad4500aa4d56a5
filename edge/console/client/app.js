// The console's root: sign-in, navigation (hash routes, so the token never
// has to travel in a URL and the edge serves one page), the live feed and
// its connection banner.

import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, ApiError, devSignIn, session } from "./api.js";
import { LiveFeed } from "./feed.js";
import { html, Problem } from "./ui.js";
import { Breakers, Overview } from "./views_ops.js";
import { DeadLetters, Tasks } from "./views_queue.js";
import { Leads, Models } from "./views_leads.js";

const VIEWS = [
  { path: "overview", label: "Overview", view: Overview },
  { path: "tasks", label: "Tasks", view: Tasks },
  { path: "dlq", label: "Dead letters", view: DeadLetters },
  { path: "breakers", label: "Breakers", view: Breakers },
  { path: "leads", label: "Leads", view: Leads },
  { path: "models", label: "Models", view: Models },
];

const TICK_TOPICS = ["tasks", "dlq", "breakers", "leads", "models", "clients"];
const BUCKET_S = 10;
const BUCKETS = 60;

function parseRoute() {
  const [path, search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  const [name, id] = path.split("/");
  const view = VIEWS.find((v) => v.path === name) ?? VIEWS[0];
  return { view, id: id ? decodeURIComponent(id) : null, params: new URLSearchParams(search) };
}

function SignIn({ onToken, error }) {
  const [token, setToken] = useState("");
  const [failure, setFailure] = useState(null);
  const dev = document.body.dataset.devSignIn === "true";
  const dev1 = async (role) => {
    try {
      onToken(await devSignIn(role));
    } catch (err) {
      setFailure(err);
    }
  };
  return html`
    <main class="sign-in">
      <h1>Pleasant Cove console</h1>
      <form class="card" autocomplete="off" onSubmit=${(e) => {
        e.preventDefault();
        if (token.trim()) onToken(token.trim());
      }}>
          <label for="token">Access token</label>
          <textarea id="token" rows="4" spellcheck="false" value=${token}
            onInput=${(e) => setToken(e.target.value)}
            placeholder="Paste a bearer token, e.g. from: deno task token --sub you --roles admin"></textarea>
          <p class="hint">Kept in this tab only (session storage) and sent as an Authorization header.</p>
          <button type="submit" class="primary">Sign in</button>
          ${dev
            ? html`
              <fieldset class="dev">
                <legend>Development sign-in</legend>
                <p class="hint">This edge runs in development: a one-hour token in one click.</p>
                <div class="row">${["admin", "operator", "viewer"].map((role) =>
                  html`
                    <button type="button" class="role" data-testid=${`dev-${role}`}
                      aria-label=${`Sign in as ${role}`} onClick=${() =>
                        dev1(role)}>${role}</button>
                  `
                )}</div>
              </fieldset>
            `
            : null}
          <${Problem} error=${failure ?? error} />
        </form>
    </main>
  `;
}

function Banner({ status }) {
  if (status.state === "live" || status.state === "connecting" && !status.dropped) return null;
  const text = status.state === "expired"
    ? "Your session expired: sign in again to resume live updates."
    : `Live updates disconnected — reconnecting${
      status.retryInMs ? ` in ${Math.ceil(status.retryInMs / 1000)} s` : ""
    }; missed changes are replayed when it is back.`;
  return html`<div class="banner" role="status" data-testid="feed-banner">${text}</div>`;
}

/** The live state: recent task changes, throughput buckets, and a tick per topic. */
function useLive(token, me) {
  const [tasks, setTasks] = useState([]);
  const [ticks, setTicks] = useState(Object.fromEntries(TICK_TOPICS.map((t) => [t, 0])));
  const [status, setStatus] = useState({ state: "connecting" });
  const counts = useRef(new Map());
  const [throughput, setThroughput] = useState([[], [], []]);
  const pending = useRef(new Set());
  const timer = useRef(null);
  const tick = (topic) => {
    // Coalesce bursts: one reload per topic per second at most.
    pending.current.add(topic);
    timer.current ??= setTimeout(() => {
      const topics = [...pending.current];
      pending.current.clear();
      timer.current = null;
      setTicks((t) => ({ ...t, ...Object.fromEntries(topics.map((p) => [p, t[p] + 1])) }));
    }, 1000);
  };
  const drawThroughput = () => {
    const now = Math.floor(Date.now() / 1000 / BUCKET_S) * BUCKET_S;
    const xs = Array.from({ length: BUCKETS }, (_, i) => now - (BUCKETS - 1 - i) * BUCKET_S);
    const at = (x, i) => counts.current.get(x)?.[i] ?? 0;
    setThroughput([xs, xs.map((x) => at(x, 0)), xs.map((x) => at(x, 1))]);
  };
  useEffect(() => {
    if (!me) return;
    const admin = me.roles.includes("admin");
    const topics = ["tasks", "leads", "breakers", "models", ...(admin ? ["dlq"] : [])];
    const feed = new LiveFeed({
      token,
      topics,
      onStatus: (state, info) =>
        setStatus((s) => ({ state, ...info, dropped: s.dropped || state === "disconnected" })),
      onResync: (topic) => tick(topic),
      onMessage: (frame) => {
        const topic = frame.topic.split(":")[0];
        tick(topic);
        if (topic !== "tasks") return;
        const d = frame.data;
        const bucket = Math.floor(Date.parse(frame.ts) / 1000 / BUCKET_S) * BUCKET_S;
        const c = counts.current.get(bucket) ?? [0, 0];
        if (d.status === "succeeded") c[0]++;
        if (d.status === "dead" || d.status === "retrying") c[1]++;
        counts.current.set(bucket, c);
        setTasks((list) =>
          [{ ...d, ts: frame.ts }, ...list.filter((t) => t.id !== d.id)].slice(0, 200)
        );
      },
    });
    feed.start();
    drawThroughput();
    const redraw = setInterval(drawThroughput, BUCKET_S * 1000);
    return () => {
      feed.stop();
      clearInterval(redraw);
      clearTimeout(timer.current);
      timer.current = null;
    };
  }, [token, me]);
  useEffect(drawThroughput, [tasks]);
  return { live: { tasks, throughput }, ticks, status };
}

function Shell({ token, me, onSignOut }) {
  const [route, setRoute] = useState(parseRoute());
  useEffect(() => {
    const onHash = () => setRoute(parseRoute());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const { live, ticks, status } = useLive(token, me);
  const View = route.view.view;
  const roles = me.roles.length > 0 ? me.roles.join(", ") : me.kind;
  return html`
    <div class="shell">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <div class="brand">Pleasant Cove <span>console</span></div>
        <nav aria-label="Sections">
          <ul>${VIEWS.map((v) =>
            html`<li><a href=${`#/${v.path}`} aria-current=${
              v === route.view ? "page" : undefined
            }>${v.label}</a></li>`
          )}</ul>
        </nav>
        <div class="who">
          <span class=${`dot ${status.state}`} title=${`live feed: ${status.state}`}></span>
          <span class="sr-only">Live feed ${status.state}.</span>
          <span data-testid="whoami">${me.sub} · ${roles}</span>
          <button type="button" onClick=${onSignOut}>Sign out</button>
        </div>
      </header>
      <${Banner} status=${status} />
      <main id="main" tabindex="-1">
        <h1 class="sr-only">${route.view.label}</h1>
        <${View} me=${me} live=${live} ticks=${ticks} route=${route} />
      </main>
    </div>
  `;
}

function App() {
  const [token, setToken] = useState(session.token);
  const [me, setMe] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!token) return;
    session.set(token);
    api("GET", "/v1/me").then(setMe, (err) => {
      session.clear();
      setToken(null);
      setError(err instanceof ApiError ? err : new ApiError(0, { title: String(err) }));
    });
  }, [token]);
  const signOut = useMemo(() => () => {
    session.clear();
    setMe(null);
    setToken(null);
  }, []);
  if (!token) {
    return html`<${SignIn} error=${error} onToken=${(t) => {
      setError(null);
      setToken(t);
    }} />`;
  }
  if (!me) {
    return html`
      <main class="sign-in">
        <p>Signing in…</p>
      </main>
    `;
  }
  return html`<${Shell} token=${token} me=${me} onSignOut=${signOut} />`;
}

const root = document.getElementById("root");
root.textContent = "";
render(html`<${App} />`, root);
