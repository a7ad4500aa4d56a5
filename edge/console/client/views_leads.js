// Leads (list with filters and scores, the funnel, lead events per hour,
// bookings) and the lead-scoring models (versions, metrics, champion;
// activate and rollback for admins).

import { useState } from "preact/hooks";
import { api } from "./api.js";
import { TimeChart } from "./charts.js";
import { useApi } from "./views_ops.js";
import { Badge, Card, ConfirmButton, fmt, html, Problem, Table, when } from "./ui.js";

const STATUSES = [
  "",
  "new",
  "contacted",
  "responded",
  "meeting_scheduled",
  "client",
  "not_interested",
];
const DAY_MS = 86_400_000;

function range(days) {
  const to = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
  const from = new Date(to.getTime() - days * DAY_MS);
  return `from=${encodeURIComponent(from.toISOString())}&to=${
    encodeURIComponent(to.toISOString())
  }`;
}

const pct = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)} %`);

function Funnel({ ticks }) {
  const funnel = useApi(`/v1/analytics/funnel?${range(30)}`, [ticks.leads]);
  const bookings = useApi(`/v1/analytics/bookings?${range(30)}`, [ticks.leads]);
  return html`<${Card} title="Outreach funnel (30 days)">
    ${funnel.error ? html`<${Problem} error=${funnel.error} />` : null}
    <${Table} caption="Outreach funnel" testid="funnel"
      columns=${[
    { label: "Stage", cell: (s) => s.stage.replace("_", " ") },
    { label: "Leads", num: true, cell: (s) => fmt(s.leads) },
    { label: "From previous", num: true, cell: (s) => pct(s.rate_from_previous) },
  ]}
      rows=${funnel.data?.stages ?? []} rowKey=${(s) => s.stage} empty="No outreach yet." />
    <p class="hint">Bookings kept: ${pct(bookings.data?.success_rate)} of ${
    fmt(bookings.data?.booked)
  } booked.</p>
  <//>`;
}

const METRIC_SERIES = [{ label: "events / h", color: "--accent" }, {
  label: "unique leads / h",
  color: "--ok",
}];

function LeadMetrics({ ticks }) {
  const metrics = useApi(`/v1/analytics/lead-metrics?${range(2)}&bucket=1h`, [ticks.leads]);
  const per = new Map();
  for (const row of metrics.data?.data ?? []) {
    const t = Date.parse(row.bucket) / 1000;
    const cur = per.get(t) ?? [0, 0];
    per.set(t, [cur[0] + row.event_count, cur[1] + row.unique_leads]);
  }
  const xs = [...per.keys()].sort((a, b) => a - b);
  const data = [xs, xs.map((x) => per.get(x)[0]), xs.map((x) => per.get(x)[1])];
  const empty = metrics.data && xs.length === 0;
  return html`<${Card} title="Lead events per hour (48 h)">
    ${metrics.error ? html`<${Problem} error=${metrics.error} />` : null}
    ${
    empty
      ? html`<p class="note">No lead events in the last 48 hours.</p>`
      : html`<${TimeChart} label="Lead events and unique leads per hour" series=${METRIC_SERIES} data=${data} />`
  }
  <//>`;
}

export function Leads({ ticks }) {
  const [filters, setFilters] = useState({ status: "", min_score: "", city: "", q: "" });
  const query = new URLSearchParams({ limit: "50" });
  for (const [k, v] of Object.entries(filters)) if (v !== "") query.set(k, v);
  const leads = useApi(`/v1/leads?${query}`, [ticks.leads]);
  const field = (name) => (e) => setFilters({ ...filters, [name]: e.target.value.trim() });
  return html`
    <div class="grid two">
      <${Funnel} ticks=${ticks} />
      <${LeadMetrics} ticks=${ticks} />
      <${Card} title="Leads" wide actions=${html`
        <form class="row" onSubmit=${(e) => e.preventDefault()}>
          <label for="lead-status">Status</label>
          <select id="lead-status" value=${filters.status} onChange=${field("status")}>
                  ${STATUSES.map((s) =>
                    html`<option value=${s}>${s.replace("_", " ") || "any"}</option>`
                  )}
                </select>
          <label for="lead-score">Min score</label>
          <input id="lead-score" type="number" min="0" max="1" step="0.05" size="5"
            value=${filters.min_score} onChange=${field("min_score")} />
          <label for="lead-city">City</label>
          <input id="lead-city" size="10" value=${filters.city} onChange=${field("city")} />
          <label for="lead-q">Search</label>
          <input id="lead-q" type="search" size="12" value=${filters.q} onChange=${field("q")} />
        </form>
      `}>
          ${leads.error ? html`<${Problem} error=${leads.error} />` : null}
          <${Table} caption="Leads" testid="leads"
            columns=${[
              { label: "Name", cell: (l) => l.name },
              { label: "City", cell: (l) => l.city ?? "—" },
              { label: "Category", cell: (l) => l.category ?? "—" },
              { label: "Status", cell: (l) => html`<${Badge} value=${l.outreach_status} />` },
              {
                label: "Score",
                num: true,
                cell: (l) => l.lead_score === null ? "—" : l.lead_score.toFixed(2),
              },
              { label: "Updated", cell: (l) => when(l.updated_at) },
            ]}
            rows=${leads.data?.data ?? []} rowKey=${(l) => l.id} empty="No leads match." />
        <//>
      </div>
  `;
}

function metric(run, name) {
  const v = run.metrics?.[name];
  return typeof v === "number" ? v.toFixed(3) : "—";
}

export function Models({ me, ticks }) {
  const admin = me.roles.includes("admin");
  const [bump, setBump] = useState(0);
  const runs = useApi("/v1/models", [ticks.models, bump]);
  const why = "Only admins can change the champion";
  const act = (path) => async () => {
    await api("POST", path);
    setBump((n) => n + 1);
  };
  return html`<${Card} title="Lead-scoring models" wide actions=${html`
    <${ConfirmButton}
      label="Roll back" testid="model-rollback" disabled=${!admin} why=${why}
      question="Roll back to the previous champion?" detail="Every lead is rescored."
      onConfirm=${act("/v1/models/rollback")} />
  `}>
    ${runs.error ? html`<${Problem} error=${runs.error} />` : null}
    <${Table} caption="Model versions" testid="models"
      columns=${[
    { label: "Version", num: true, cell: (r) => r.version },
    { label: "Status", cell: (r) => html`<${Badge} value=${r.status} />` },
    { label: "AUC", num: true, cell: (r) => metric(r, "auc") },
    { label: "Precision", num: true, cell: (r) => metric(r, "precision") },
    { label: "Recall", num: true, cell: (r) => metric(r, "recall") },
    { label: "Trained", cell: (r) => when(r.created_at) },
    { label: "Reason", cell: (r) => r.status_reason },
    {
      label: "",
      cell: (r) =>
        r.status === "candidate"
          ? html`
            <${ConfirmButton} label="Activate" testid=${`activate-${r.version}`}
              disabled=${!admin} why=${why} question=${`Make version ${r.version} the champion?`}
              detail="Every lead is rescored with it." onConfirm=${act(
                `/v1/models/${r.version}/activate`,
              )} />
          `
          : null,
    },
  ]}
      rows=${runs.data?.data ?? []} rowKey=${(r) => r.version} empty="No model trained yet." />
  <//>`;
}
