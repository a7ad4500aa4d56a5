// Small shared pieces of the console's views: htm bound to Preact, a confirm
// dialog (the native <dialog>: focus stays inside, Escape cancels), badges,
// tables and formatting.

import { h } from "preact";
import { useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

/** Milliseconds or an ISO string → a short local time. */
export function when(value) {
  if (value === null || value === undefined || value === "") return "—";
  const date = typeof value === "number" ? new Date(value) : new Date(String(value));
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toLocaleString(undefined, {
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/** A duration in ms → "12 s", "3 min". */
export function duration(ms) {
  if (ms === null || ms === undefined) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.round(ms / 60_000)} min`;
}

export function fmt(n) {
  return typeof n === "number" ? n.toLocaleString() : "—";
}

export function shortId(id) {
  return typeof id === "string" ? id.slice(0, 8) : "—";
}

const TONES = {
  succeeded: "ok",
  closed: "ok",
  live: "ok",
  running: "info",
  pending: "muted",
  half_open: "warn",
  retrying: "warn",
  disabled: "warn",
  dead: "bad",
  open: "bad",
  forced_open: "bad",
  // Models
  champion: "ok",
  candidate: "info",
  rejected: "bad",
  retired: "muted",
  // Leads
  new: "muted",
  contacted: "info",
  responded: "info",
  meeting_scheduled: "warn",
  client: "ok",
  not_interested: "muted",
  // SLO status (GET /v1/slo)
  ok: "ok",
  breach: "bad",
  no_data: "muted",
  unknown: "muted",
};

/** A state as a colored pill (the word is always shown: color is never the only signal). */
export function Badge({ value }) {
  return html`<span class=${`badge ${TONES[value] ?? "muted"}`}>${
    String(value).replaceAll("_", " ")
  }</span>`;
}

export function Card({ title, children, actions, wide }) {
  return html`<section class=${`card${wide ? " wide" : ""}`} aria-label=${title}>
    <header class="card-head"><h2>${title}</h2>${actions ?? null}</header>
    ${children}
  </section>`;
}

export function Stat({ label, value, tone, testid }) {
  return html`
    <div class=${`stat ${tone ?? ""}`} data-testid=${testid}>
      <div class="stat-value">${value}</div>
      <div class="stat-label">${label}</div>
    </div>
  `;
}

/** An API error as a sentence: 403s say who may, others the problem title. */
export function Problem({ error }) {
  if (!error) return null;
  const p = error.problem ?? {};
  if (error.status === 404) return html`<p class="note">Not available on this edge.</p>`;
  if (error.status === 403) {
    return html`<p class="note">Your role cannot see this${
      p.granted_to
        ? html`
          (granted to ${p.granted_to})
        `
        : ""
    }.</p>`;
  }
  return html`<p class="error" role="alert">${p.title ?? error.message}${
    p.detail ? `: ${p.detail}` : ""
  }</p>`;
}

/**
 * A button that asks first. `disabled` with `why` explains itself to the
 * signed-in role (and to screen readers through the title).
 */
export function ConfirmButton(
  { label, question, detail, confirmLabel, danger, disabled, why, onConfirm, testid },
) {
  const dialog = useRef(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const open = () => {
    setError(null);
    dialog.current?.showModal();
  };
  const confirm = async (event) => {
    event.preventDefault();
    setBusy(true);
    try {
      await onConfirm();
      dialog.current?.close();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <span class="confirm">
      <button type="button" class=${danger ? "danger" : ""} disabled=${disabled}
        title=${disabled ? why : question} aria-haspopup="dialog" data-testid=${testid}
        onClick=${open}>${label}</button>
      <dialog ref=${dialog} aria-labelledby=${`${testid}-q`}>
        <form method="dialog" onSubmit=${confirm}>
            <h3 id=${`${testid}-q`}>${question}</h3>
            ${detail ? html`<p>${detail}</p>` : null}
            ${error ? html`<${Problem} error=${error} />` : null}
            <div class="row end">
              <button type="button" onClick=${() => dialog.current?.close()}>Cancel</button>
              <button type="submit" class=${danger ? "danger" : "primary"} disabled=${busy}
                data-testid=${`${testid}-confirm`}>${confirmLabel ?? label}</button>
            </div>
          </form>
      </dialog>
    </span>
  `;
}

/** A table with a caption (for screen readers) and an empty state. */
export function Table({ caption, columns, rows, empty, rowKey, testid }) {
  return html`
    <div class="table-wrap">
      <table data-testid=${testid}>
        <caption class="sr-only">${caption}</caption>
        <thead>
          <tr>${columns.map((c) =>
            html`<th scope="col" class=${c.num ? "num" : ""}>${c.label}</th>`
          )}</tr>
        </thead>
        <tbody>${rows.length === 0
          ? html`
            <tr>
              <td colspan=${columns.length} class="empty">${empty}</td>
            </tr>
          `
          : rows.map((row) =>
            html`<tr key=${rowKey(row)} data-key=${rowKey(row)}>${
              columns.map((c) => html`<td class=${c.num ? "num" : ""}>${c.cell(row)}</td>`)
            }</tr>`
          )}</tbody>
      </table>
    </div>
  `;
}

/** Pretty JSON in a scrollable, focusable block. */
export function Json({ value, label }) {
  return html`<pre class="json" tabindex="0" aria-label=${label}>${
    JSON.stringify(value, null, 2)
  }</pre>`;
}
