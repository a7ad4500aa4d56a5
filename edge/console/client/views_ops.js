// Overview and Breakers. Data comes from the /v1 API with the operator's
// token; the live feed's messages bump `ticks`, which makes a view reload
// what changed (coalesced by the app, so a burst costs one reload), never
// polling.

import { useEffect, useState } from "preact/hooks";
import { api, load } from "./api.js";
import { TimeChart } from "./charts.js";
import {
  Badge,
  Card,
  ConfirmButton,
  duration,
  fmt,
  html,
  Problem,
  shortId,
  Stat,
  Table,
  when,
} from "./ui.js";

/** Loads `path` again whenever one of `deps` changes; `{data, error, loading}`. */
export function useApi(path, deps) {
  const [state, setState] = useState({ loading: true });
  useEffect(() => {
    if (path === null) return;
    let current = true;
    load(path).then((r) => current && setState({ ...r, loading: false }));
    return () => {
      current = false;
    };
  }, [path, ...deps]);
  return state;
}

const THROUGHPUT_SERIES = [
  { label: "succeeded / 10 s", color: "--ok" },
  { label: "failed / 10 s", color: "--bad" },
];

function QueueDepth({ queue }) {
  if (queue.error) return html`<${Problem} error=${queue.error} />`;
  const q = queue.data;
  if (!q) return html`<p class="note">Loading…</p>`;
  const rows = [
    ["ready · high", q.ready.high],
    ["ready · normal", q.ready.normal],
    ["ready · low", q.ready.low],
    ["delayed", q.delayed],
    ["running", q.running],
    ["dead", q.dead],
  ];
  return html`
    <${Table} caption="Queue depth by state and priority" testid="queue-depth"
      columns=${[{ label: "State", cell: (r) => r[0] }, {
        label: "Tasks",
        num: true,
        cell: (r) => fmt(r[1]),
      }]}
      rows=${rows} rowKey=${(r) => r[0]} empty="" />
  `;
}

/** An SLO reading as people read it: ratios in percent, seconds in milliseconds. */
function sloValue(unit, v) {
  if (typeof v !== "number") return "—";
  return unit === "seconds" ? `${Math.round(v * 1000)} ms` : `${+(v * 100).toFixed(2)} %`;
}

/** The SLO status (GET /v1/slo): each objective with its value, bound and verdict. */
function SloStatus({ slo }) {
  if (slo.error) return html`<${Problem} error=${slo.error} />`;
  const r = slo.data;
  if (!r) return html`<p class="note">Loading…</p>`;
  return html`
    <p data-testid="slo-status">Overall <${Badge} value=${r.status} />${r.detail
      ? html`
        <span class="note">${r.detail}</span>
      `
      : null}</p>
    <${Table} caption="SLO objectives, from Prometheus's recording rules" testid="slo"
      columns=${[
        { label: "Objective", cell: (o) => o.title },
        { label: "Now", num: true, cell: (o) => sloValue(o.unit, o.value) },
        {
          label: "Target",
          num: true,
          cell: (o) => `${o.comparison === "below" ? "≤" : "≥"} ${sloValue(o.unit, o.threshold)}`,
        },
        { label: "Status", cell: (o) => html`<${Badge} value=${o.status} />` },
      ]}
      rows=${r.objectives} rowKey=${(o) => o.name} empty="" />
  `;
}

function deadByType(queue, dlq) {
  if (queue.data) return Object.entries(queue.data.dead_by_type).filter(([, n]) => n > 0);
  const counts = {};
  for (const t of dlq.data?.data ?? []) counts[t.type] = (counts[t.type] ?? 0) + 1;
  return Object.entries(counts);
}

export function Overview({ me, live, ticks }) {
  const admin = me.roles.includes("admin");
  const queue = useApi("/v1/queue", [ticks.tasks, ticks.dlq]);
  const dlq = useApi(admin ? "/v1/dlq?limit=100" : null, [ticks.dlq, ticks.tasks]);
  const breakers = useApi("/v1/breakers", [ticks.breakers]);
  const clients = useApi(admin ? "/v1/ws/clients" : null, [ticks.clients]);
  const tier = useApi("/v1/analytics/capabilities", []);
  // Not on the live feed: reread on activity (the edge caches the answer for 10 s).
  const slo = useApi("/v1/slo", [ticks.tasks, ticks.breakers]);
  const open = (breakers.data?.breakers ?? []).filter((b) => b.state !== "closed");
  const deadTotal = queue.data?.dead ?? dlq.data?.total;
  const perType = deadByType(queue, dlq);
  const ready = queue.data
    ? queue.data.ready.high + queue.data.ready.normal + queue.data.ready.low
    : null;
  const clientList = clients.data?.data ?? [];
  const perInstance = {};
  for (const c of clientList) perInstance[c.instance] = (perInstance[c.instance] ?? 0) + 1;

  return html`
    <div class="grid">
      <div class="stats wide">
        <${Stat} label="ready" value=${fmt(ready)} testid="stat-ready" />
        <${Stat} label="running" value=${fmt(queue.data?.running)} testid="stat-running" />
        <${Stat} label="dead letters" value=${fmt(deadTotal)} tone=${deadTotal > 0 ? "bad" : ""}
          testid="stat-dead" />
        <${Stat} label="breakers not closed" value=${breakers.data ? open.length : "—"}
          tone=${open.length > 0 ? "warn" : ""} testid="stat-breakers" />
        <${Stat} label="live-feed clients" value=${admin ? fmt(clients.data?.total) : "—"}
          testid="stat-clients" />
        <${Stat} label="analytics tier" value=${tier.data
          ? `${tier.data.tier} · ${tier.data.name}`
          : "—"}
          testid="stat-tier" />
      </div>
      <${Card} title="Throughput (live, since this page opened)" wide>
        <${TimeChart} label="Tasks succeeded and failed per 10 seconds" series=${THROUGHPUT_SERIES}
          data=${live.throughput} testid="throughput-chart" />
        <//>
        <${Card} title="Queue depth">
          <${QueueDepth} queue=${queue} />
          <//>
          <${Card} title="Dead letters by type">
          ${!admin && !queue.data
            ? html`<p class="note">Admins and operators see dead letters.</p>`
            : html`
              <${Table} caption="Dead-letter count per task type" testid="dead-by-type"
                columns=${[{
                  label: "Type",
                  cell: (r) => html`<a href=${`#/dlq?type=${r[0]}`}>${r[0]}</a>`,
                }, {
                  label: "Dead",
                  num: true,
                  cell: (r) => fmt(r[1]),
                }]}
                rows=${perType} rowKey=${(r) => r[0]} empty="No dead letters." />
            `}
        <//>
        <${Card} title="SLO status">
          <${SloStatus} slo=${slo} />
        <//>
        <${Card} title="Breakers">
          ${breakers.error
            ? html`<${Problem} error=${breakers.error} />`
            : html`<ul class="pills">${
              (breakers.data?.breakers ?? []).map((b) =>
                html`<li key=${b.name}><span>${b.name}</span> <${Badge} value=${b.state} /></li>`
              )
            }</ul>`}
        <//>
        ${admin
          ? html`
            <${Card} title="Live-feed clients per instance">
              <${Table} caption="Connected live-feed clients per edge instance" testid="clients"
                columns=${[{ label: "Instance", cell: (r) => r[0] }, {
                  label: "Clients",
                  num: true,
                  cell: (r) => fmt(r[1]),
                }]}
                rows=${Object.entries(perInstance)} rowKey=${(r) => r[0]} empty="None." />
              <//>
          `
          : null}
        <${Card} title="Live tasks" wide>
          <${Table} caption="Task status changes seen on the live feed, newest first" testid="live-tasks"
            columns=${[
              {
                label: "Task",
                cell: (t) => html`<a href=${`#/tasks/${t.id}`} class="mono">${shortId(t.id)}</a>`,
              },
              { label: "Type", cell: (t) => t.type ?? "—" },
              { label: "Status", cell: (t) => html`<${Badge} value=${t.status} />` },
              { label: "Attempt", num: true, cell: (t) => t.attempts ?? "—" },
              { label: "Updated", cell: (t) => when(t.ts) },
            ]}
            rows=${live.tasks.slice(0, 12)} rowKey=${(t) => t.id}
            empty="Waiting for task activity…" />
        <//>
      </div>
  `;
}

function remaining(b) {
  if (b.state === "open") {
    return `probe in ${duration(b.probe_remaining_ms ?? b.open_remaining_ms)}`;
  }
  if (b.state === "half_open") return "probing";
  return "—";
}

export function Breakers({ me, ticks }) {
  const admin = me.roles.includes("admin");
  const [bump, setBump] = useState(0);
  const list = useApi("/v1/breakers", [ticks.breakers, bump]);
  const why = "Only admins can change breakers";
  const act = (name, action) => async () => {
    await api("POST", `/v1/breakers/${name}/${action}`);
    setBump((n) => n + 1);
  };
  return html`<${Card} title="Circuit breakers" wide>
    ${list.error ? html`<${Problem} error=${list.error} />` : null}
    ${admin ? null : html`<p class="note">You can watch breakers; only admins can change them.</p>`}
    <${Table} caption="Circuit breakers" testid="breakers"
      columns=${[
    { label: "Breaker", cell: (b) => html`<strong>${b.name}</strong>` },
    { label: "State", cell: (b) => html`<${Badge} value=${b.state} />` },
    { label: "Failures", num: true, cell: (b) => fmt(b.consecutive_failures) },
    { label: "Trips", num: true, cell: (b) => fmt(b.trips) },
    { label: "Next probe", cell: remaining },
    { label: "Reason", cell: (b) => b.reason ? `${b.reason}${b.by ? ` (${b.by})` : ""}` : "—" },
    {
      label: "Actions",
      cell: (b) =>
        html`
          <div class="row">
            <${ConfirmButton} label="Reset" testid=${`reset-${b.name}`} disabled=${!admin} why=${why}
              question=${`Reset breaker ${b.name}?`}
              detail="Closes it and clears its counters: calls flow to the dependency again."
              onConfirm=${act(b.name, "reset")} />
            <${ConfirmButton} label="Force open" danger testid=${`force-open-${b.name}`}
              disabled=${!admin} why=${why} question=${`Force breaker ${b.name} open?`}
              detail="Every call is refused (or degraded) until someone resets it."
              onConfirm=${act(b.name, "force-open")} />
            <${ConfirmButton} label="Disable" testid=${`disable-${b.name}`} disabled=${!admin}
              why=${why} question=${`Disable breaker ${b.name}?`}
              detail="Every call goes through, even while the dependency fails, until a reset."
              onConfirm=${act(b.name, "disable")} />
          </div>
        `,
    },
  ]}
      rows=${list.data?.breakers ?? []} rowKey=${(b) => b.name} empty="No breakers." />
  <//>`;
}
