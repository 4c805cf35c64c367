// Control: capture status, local CA (install / remove), settings.json editor, export.
import type { Child } from "hono/jsx";
import type { PauseView, RedirectorState } from "../app.ts";
import type { FilterForm } from "../filters.ts";
import type { FieldSpec, FormValues } from "../settings-form.ts";
import { CSRF_FIELD } from "../security.ts";
import { Panel } from "./components.tsx";
import { Layout, type PageContext } from "./layout.tsx";
import { FilterFields, type FilterOptions } from "./timeline.tsx";

/** A POST form for one Control action: plain form post without JS, htmx swap of the section with it; CSRF token included. */
function PostForm(props: { action: string; target: string; csrf: string; children?: Child }) {
  return (
    <form method="post" action={props.action} hx-post={props.action} hx-target={`#${props.target}`} hx-swap="outerHTML">
      <input type="hidden" name={CSRF_FIELD} value={props.csrf} />
      {props.children}
    </form>
  );
}

function display(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}

export function KeyValues(props: { values: Record<string, unknown> }) {
  const entries = Object.entries(props.values);
  if (!entries.length) return <span class="dim">nothing reported</span>;
  return (
    <table class="kv">
      <tbody>
        {entries.map(([k, v]) => (
          <tr>
            <th>{k}</th>
            <td class="mono">{display(v)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export interface ActionResult {
  ok: boolean;
  message: string;
}

export function CaptureSection(props: { ctx: PageContext; status: Record<string, unknown>; redirector?: RedirectorState; pause?: PauseView; result?: ActionResult }) {
  const r = props.redirector;
  const p = props.pause;
  // While stopping, the section reloads itself every second until the status file says stopped.
  const poll = r?.state === "stopping" ? { "hx-get": "/control/capture", "hx-trigger": "every 1s", "hx-swap": "outerHTML" } : {};
  return (
    <section class="panel" id="capture" {...poll}>
      <header>
        <h2>Capture</h2>
      </header>
      <div class="panel-body">
        {props.result ? <p class={`notice ${props.result.ok ? "ok" : "error"}`}>{props.result.message}</p> : null}
        <KeyValues values={props.status} />
        {r ? (
          <p id="redirector-state" data-state={r.state}>
            oisp redirect: {r.detail}
          </p>
        ) : null}
        {p ? (
          <p id="pause-state" data-paused={String(p.paused)}>
            {p.paused
              ? `Recording paused${p.since ? ` since ${p.since}` : ""}${p.by ? ` (${p.by})` : ""}: connections are relayed, nothing is decrypted or recorded.`
              : "Recording."}
            {p.error ? ` Capture state file: ${p.error}` : ""}
          </p>
        ) : null}
        <div class="actions">
          <PostForm action="/control/capture/start" target="capture" csrf={props.ctx.csrf}>
            <button type="submit">Start capture</button>
          </PostForm>
          {r && r.state !== "stopped" ? (
            <PostForm action="/control/capture/stop" target="capture" csrf={props.ctx.csrf}>
              <button type="submit" class="danger" disabled={r.state === "stopping"}>
                {r.state === "stopping" ? "Stopping…" : "Stop capture"}
              </button>
            </PostForm>
          ) : null}
          {p ? (
            <PostForm action={p.paused ? "/control/capture/resume" : "/control/capture/pause"} target="capture" csrf={props.ctx.csrf}>
              <button type="submit">{p.paused ? "Resume recording" : "Pause recording"}</button>
            </PostForm>
          ) : null}
        </div>
      </div>
    </section>
  );
}

export function CaSection(props: { ctx: PageContext; status: Record<string, unknown> | { error: string }; result?: ActionResult }) {
  return (
    <section class="panel" id="ca">
      <header>
        <h2>Local certificate authority</h2>
      </header>
      <div class="panel-body">
        {props.result ? <p class={`notice ${props.result.ok ? "ok" : "error"}`}>{props.result.message}</p> : null}
        <KeyValues values={props.status} />
        <div class="actions">
          <PostForm action="/control/ca/install" target="ca" csrf={props.ctx.csrf}>
            <button type="submit" class="primary">
              Install in trust store
            </button>
          </PostForm>
          <PostForm action="/control/ca/uninstall" target="ca" csrf={props.ctx.csrf}>
            <button type="submit" class="danger">
              Remove from trust store
            </button>
          </PostForm>
        </div>
      </div>
    </section>
  );
}

function FieldInput(props: { f: FieldSpec; value: string; id: string }) {
  const { f, value, id } = props;
  switch (f.kind) {
    case "boolean":
      return (
        <select id={id} name={f.key}>
          <option value="">default</option>
          <option value="true" selected={value === "true"}>
            true
          </option>
          <option value="false" selected={value === "false"}>
            false
          </option>
          {value !== "" && value !== "true" && value !== "false" ? (
            <option value={value} selected>
              {value}
            </option>
          ) : null}
        </select>
      );
    case "enum":
      return (
        <select id={id} name={f.key}>
          <option value="">default</option>
          {[...(f.options ?? []), ...(value && !(f.options ?? []).includes(value) ? [value] : [])].map((o) => (
            <option value={o} selected={o === value}>
              {o}
            </option>
          ))}
        </select>
      );
    case "list":
      return <textarea id={id} name={f.key} placeholder="one per line">{value}</textarea>;
    case "number":
      // type=text, not number: the browser would silently drop "abc" instead of letting us explain.
      return <input id={id} name={f.key} type="text" inputmode="numeric" value={value} placeholder={f.min !== undefined ? `${f.min}–${f.max ?? ""}` : ""} />;
    default:
      return <input id={id} name={f.key} type="text" value={value} />;
  }
}

export interface SettingsSectionProps {
  ctx: PageContext;
  fields: FieldSpec[];
  values: FormValues;
  errors: Record<string, string[]>;
  /** settings.json path, shown so users know what they edit. */
  path: string;
  saved?: boolean;
  /** The file on disk could not be read (broken JSON...): shown, and saving replaces it. */
  loadError?: string;
}

export function SettingsSection(props: SettingsSectionProps) {
  // Ids differ per render: htmx's settle step copies attributes between old and new elements that share
  // an id, which shows up as blocked inline-style writes under our CSP. Nothing else refers to these ids.
  const idPrefix = `setting-${Math.random().toString(36).slice(2, 8)}`;
  const rootErrors = props.errors[""] ?? [];
  const invalid = Object.keys(props.errors).length > 0;
  return (
    <section class="panel" id="settings">
      <header>
        <h2>Settings</h2>
        <span class="spacer"></span>
        <span class="dim mono">{props.path}</span>
      </header>
      <div class="panel-body">
        {props.saved ? <p class="notice ok">Saved. Restart oisp for the new settings to take effect.</p> : null}
        {invalid ? <p class="notice error">Not saved: fix the fields marked below.</p> : null}
        {props.loadError ? <p class="notice error">The current file could not be read: {props.loadError}. Saving replaces it.</p> : null}
        {rootErrors.map((e) => (
          <p class="notice error">{e}</p>
        ))}
        <PostForm action="/control/settings" target="settings" csrf={props.ctx.csrf}>
          {props.fields.map((f) => {
            const errs = props.errors[f.key] ?? [];
            return (
              <div class={errs.length ? "field invalid" : "field"} data-field={f.key}>
                <label for={`${idPrefix}-${f.key}`}>{f.key}</label>
                <FieldInput f={f} value={props.values[f.key] ?? ""} id={`${idPrefix}-${f.key}`} />
                {f.description ? <span class="help">{f.description}</span> : null}
                {errs.map((e) => (
                  <span class="field-error" role="alert">
                    {e}
                  </span>
                ))}
              </div>
            );
          })}
          <div class="actions">
            <button type="submit" class="primary">
              Save settings
            </button>
            <span class="dim">Empty fields use the default.</span>
          </div>
        </PostForm>
      </div>
    </section>
  );
}

export interface ControlProps {
  ctx: PageContext;
  capture: Record<string, unknown>;
  redirector?: RedirectorState;
  pause?: PauseView;
  ca: Record<string, unknown> | { error: string };
  settings: Omit<SettingsSectionProps, "ctx">;
  exportForm: FilterForm;
  options: FilterOptions;
}

export function ControlPage(props: ControlProps) {
  return (
    <Layout ctx={props.ctx} title="Control" active="control">
      <div class="page-head">
        <h1>Control</h1>
      </div>
      <div class="cols">
        <div>
          <CaptureSection ctx={props.ctx} status={props.capture} redirector={props.redirector} pause={props.pause} />
          <CaSection ctx={props.ctx} status={props.ca} />
          <Panel title="Export events">
            <form class="filters" method="get" action="/export/events.jsonl">
              <FilterFields form={props.exportForm} options={props.options} />
              <div class="actions">
                <button type="submit" class="primary">
                  Download JSONL
                </button>
                <button type="submit" formaction="/export/events.csv">
                  Download CSV
                </button>
                <span class="dim">streamed, oldest first</span>
              </div>
            </form>
          </Panel>
        </div>
        <SettingsSection ctx={props.ctx} {...props.settings} />
      </div>
    </Layout>
  );
}
