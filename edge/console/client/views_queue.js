// Tasks (inspect one, browse by state and type when the edge lists tasks)
// and the dead-letter queue (inspect, replay one or a type, purge).

import { useEffect, useState } from "preact/hooks";
import { api, load } from "./api.js";
import { useApi } from "./views_ops.js";
import {
  Badge,
  Card,
  ConfirmButton,
  fmt,
  html,
  Json,
  Problem,
  shortId,
  Table,
  when,
} from "./ui.js";

// The states GET /v1/tasks lists (the queue's indexes; succeeded tasks are not
// indexed), and the task statuses each one holds, for the live-feed fallback.
const STATES = {
  ready: ["pending"],
  delayed: ["pending", "retrying"],
  running: ["running"],
  dead: ["dead"],
};

function TaskDetail({ id, ticks }) {
  const task = useApi(`/v1/tasks/${encodeURIComponent(id)}`, [ticks.tasks]);
  if (task.error) return html`<${Problem} error=${task.error} />`;
  const t = task.data;
  if (!t) return html`<p class="note">Loading…</p>`;
  return html`
    <div data-testid="task-detail">
      <dl class="facts">
        <dt>Id</dt>
        <dd class="mono">${t.id}</dd>
        <dt>Type</dt>
        <dd>${t.type}</dd>
        <dt>Status</dt>
        <dd>
          <${Badge} value=${t.status} />
        </dd>
        <dt>Attempts</dt>
        <dd>${t.attempts} of ${t.max_attempts}</dd>
        <dt>Created</dt>
        <dd>${when(t.created_at)}</dd>
        <dt>Updated</dt>
        <dd>${when(t.updated_at)}</dd>
        <dt>Finished</dt>
        <dd>${when(t.finished_at)}</dd>
        <dt>Failed</dt>
        <dd>${when(t.failed_at)}</dd>
        <dt>Last error</dt>
        <dd>${t.last_error ?? "—"}</dd>
        <dt>DLQ reason</dt>
        <dd>${t.dlq_reason ?? "—"}</dd>
      </dl>
      <h3>Result</h3>
      <${Json} value=${t.result} label="Task result" />
    </div>
  `;
}

export function Tasks({ route, live, ticks }) {
  const [id, setId] = useState(route.id ?? "");
  const [state, setState] = useState("ready");
  const [type, setType] = useState("");
  useEffect(() => setId(route.id ?? ""), [route.id]);
  const query = new URLSearchParams({ limit: "50", state });
  if (type) query.set("type", type);
  const list = useApi(`/v1/tasks?${query}`, [ticks.tasks]);
  const rows = list.data?.data ?? live.tasks;
  const submit = (event) => {
    event.preventDefault();
    location.hash = `#/tasks/${id.trim()}`;
  };
  return html`
    <div class="grid">
      <${Card} title="Inspect a task" wide>
          <form class="row" onSubmit=${submit}>
            <label for="task-id">Task id</label>
            <input id="task-id" class="grow mono" value=${id} onInput=${(e) =>
              setId(e.target.value)}
              placeholder="00000000-0000-0000-0000-000000000000" />
            <button type="submit" class="primary">Inspect</button>
          </form>
          ${route.id ? html`<${TaskDetail} id=${route.id} ticks=${ticks} />` : null}
        <//>
        <${Card} title=${list.data ? "Tasks" : "Tasks seen live"} wide actions=${html`
          <div class="row">
            <label for="task-state">State</label>
            <select id="task-state" value=${state} onChange=${(e) => setState(e.target.value)}>
                    ${Object.keys(STATES).map((s) => html`<option value=${s}>${s}</option>`)}
                  </select>
            <label for="task-type">Type</label>
            <input id="task-type" size="14" value=${type} onChange=${(e) =>
              setType(e.target.value)} />
          </div>
        `}>
          ${list.error && list.error.status !== 404 && list.error.status !== 405
            ? html`<${Problem} error=${list.error} />`
            : null}
          ${list.data
            ? null
            : html`<p class="note">This edge does not list tasks (GET /v1/tasks); showing the
        changes seen on the live feed since this page opened.</p>`}
          <${Table} caption="Tasks" testid="tasks"
            columns=${[
              {
                label: "Task",
                cell: (t) => html`<a class="mono" href=${`#/tasks/${t.id}`}>${shortId(t.id)}</a>`,
              },
              { label: "Type", cell: (t) => t.type },
              { label: "Status", cell: (t) => html`<${Badge} value=${t.status} />` },
              { label: "Attempts", num: true, cell: (t) => t.attempts ?? t.attempt ?? "—" },
              { label: "Updated", cell: (t) => when(t.updated_at ?? t.ts) },
            ]}
            rows=${list.data
              ? rows
              : rows.filter((t) => STATES[state].includes(t.status) && (!type || t.type === type))}
            rowKey=${(t) => t.id} empty="No tasks." />
        <//>
      </div>
  `;
}

function DeadDetail({ id }) {
  const [state, setState] = useState({});
  useEffect(() => {
    load(`/v1/dlq/${id}`).then(setState);
  }, [id]);
  if (state.error) return html`<${Problem} error=${state.error} />`;
  return state.data
    ? html`<${Json} value=${state.data} label="Dead task" />`
    : html`<p>Loading…</p>`;
}

export function DeadLetters({ me, route, ticks }) {
  const admin = me.roles.includes("admin");
  const [type, setType] = useState(route.params.get("type") ?? "");
  const [bump, setBump] = useState(0);
  const [open, setOpen] = useState(null);
  const [notice, setNotice] = useState(null);
  const query = new URLSearchParams({ limit: "50" });
  if (type) query.set("type", type);
  const page = useApi(admin ? `/v1/dlq?${query}` : null, [ticks.dlq, ticks.tasks, bump]);
  if (!admin) {
    return html`
      <${Card} title="Dead letters" wide>
        <p class="note">Dead letters hold task payloads (addresses, lead data): only admins see them.</p>
        <//>
    `;
  }
  const done = (message) => {
    setNotice(message);
    setBump((n) => n + 1);
  };
  const replay = (t) => async () => {
    await api("POST", `/v1/dlq/${t.id}/replay`);
    done(`Task ${shortId(t.id)} replayed.`);
  };
  const purge = (t) => async () => {
    await api("DELETE", `/v1/dlq/${t.id}`);
    done(`Task ${shortId(t.id)} purged.`);
  };
  const replayType = async () => {
    const r = await api("POST", `/v1/dlq/replay?type=${encodeURIComponent(type)}`);
    done(`${fmt(r.replayed)} ${type} task(s) replayed, ${fmt(r.remaining)} remaining.`);
  };
  return html`<${Card} title="Dead letters" wide actions=${html`
    <div class="row">
      <label for="dlq-type">Type</label>
      <input id="dlq-type" size="16" value=${type} placeholder="any"
        onChange=${(e) => setType(e.target.value.trim())} />
      <${ConfirmButton} label="Replay all of type" testid="replay-type" disabled=${!type}
        why="Filter by a type first" question=${`Replay every dead ${type} task?`}
        detail="They are queued again, 100 per second; repeat while some remain."
        onConfirm=${replayType} />
    </div>
  `}>
    ${notice ? html`<p class="notice" role="status">${notice}</p>` : null}
    ${page.error ? html`<${Problem} error=${page.error} />` : null}
    <p class="hint">${fmt(page.data?.total)} dead ${
    type ? `${type} ` : ""
  }task(s), newest first.</p>
    <${Table} caption="Dead-letter queue" testid="dlq"
      columns=${[
    { label: "Task", cell: (t) => html`<span class="mono">${shortId(t.id)}</span>` },
    { label: "Type", cell: (t) => t.type },
    { label: "Failed", cell: (t) => when(t.failed_at) },
    { label: "Attempts", num: true, cell: (t) => `${t.attempts}/${t.max_attempts}` },
    {
      label: "Reason",
      cell: (t) =>
        html`<span class="clip" title=${t.last_error ?? ""}>${
          t.dlq_reason ?? t.last_error ?? "—"
        }</span>`,
    },
    {
      label: "Actions",
      cell: (t) =>
        html`
          <div class="row">
            <button type="button" aria-expanded=${open === t.id}
              onClick=${() => setOpen(open === t.id ? null : t.id)}>Inspect</button>
            <${ConfirmButton} label="Replay" testid=${`replay-${t.id}`} question="Replay this task?"
              detail=${`${t.type} ${t.id} is queued again with fresh attempts.`}
              onConfirm=${replay(t)} />
            <${ConfirmButton} label="Purge" danger testid=${`purge-${t.id}`}
              question="Purge this dead task for good?" detail="It cannot be replayed afterwards."
              onConfirm=${purge(t)} />
          </div>
        `,
    },
  ]}
      rows=${page.data?.data ?? []} rowKey=${(t) => t.id} empty="The dead-letter queue is empty." />
    ${
    open
      ? html`
        <h3>Task ${shortId(open)}</h3>
        <${DeadDetail} id=${open} />
      `
      : null
  }
  <//>`;
}
