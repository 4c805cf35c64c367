// The dashboard's /control page: capture status and start/stop/pause, the local CA, settings.json.
import { Hono, type Context } from "hono";
import { readSettingsFile, SettingsError, settingsSchema, writeSettingsFile } from "../../config/settings.ts";
import { settingsPath } from "../../config/paths.ts";
import type { PauseView, RedirectorState } from "../app.ts";
import { parseFilterForm, type FilterForm } from "../filters.ts";
import { formToCandidate, settingsFields, settingsToForm, validateSettings, type FieldSpec } from "../settings-form.ts";
import { ControlPage, CaptureSection, CaSection, SettingsSection, type ActionResult, type SettingsSectionProps } from "../views/control.tsx";
import type { RouteKit, WebEnv } from "./kit.ts";

export function controlRoutes(kit: RouteKit): Hono<WebEnv> {
  const app = new Hono<WebEnv>();
  const { d, ctx, page, filterOptions } = kit;
  // Built on the first /control request: the settings form's schema loads zod (settings-form.ts).
  let fieldList: FieldSpec[] | undefined;
  const settingsFieldList = () => (fieldList ??= settingsFields());

  const currentSettings = (): Omit<SettingsSectionProps, "ctx"> => {
    const fields = settingsFieldList();
    const path = settingsPath(d.dataDir);
    try {
      return { fields, values: settingsToForm(readSettingsFile(d.dataDir), fields), errors: {}, path };
    } catch (err) {
      return { fields, values: settingsToForm({}, fields), errors: {}, path, loadError: err instanceof SettingsError ? err.message : String(err) };
    }
  };

  const caStatus = async (): Promise<Record<string, unknown> | { error: string }> => {
    if (!d.ca) return { status: "CA management is not available in this build" };
    try {
      return await d.ca.status();
    } catch (err) {
      return { error: (err as Error).message };
    }
  };

  const renderControl = async (c: Context<WebEnv>, settings = currentSettings(), exportForm: FilterForm = parseFilterForm({})) =>
    page(
      c,
      ControlPage({
        ctx: ctx(),
        capture: safeStatus(d.status),
        redirector: redirectorState(),
        pause: pauseState(),
        ca: await caStatus(),
        settings,
        exportForm,
        options: filterOptions(),
      }),
    );

  app.get("/control", (c) => renderControl(c));

  app.post("/control/settings", async (c) => {
    const body = await c.req.parseBody();
    const fields = settingsFieldList();
    const { values, candidate } = formToCandidate(body, fields);
    const result = validateSettings(candidate);
    const path = settingsPath(d.dataDir);
    let state: Omit<SettingsSectionProps, "ctx">;
    if (result.ok && result.settings) {
      try {
        writeSettingsFile(d.dataDir, result.settings);
        state = { fields, values: settingsToForm(result.settings, fields), errors: {}, path, saved: true };
      } catch (err) {
        const message = err instanceof Error && "issues" in err ? settingsSchema().formatZodIssues(err as never) : (err as Error).message;
        state = { fields, values, errors: { "": [`could not write ${path}: ${message}`] }, path };
      }
    } else {
      state = { fields, values, errors: result.errors, path };
    }
    if (c.req.header("HX-Request")) return c.html(await SettingsSection({ ctx: ctx(), ...state }), result.ok ? 200 : 422);
    return renderControl(c, state);
  });

  const caAction = (action: "install" | "uninstall") => async (c: Context<WebEnv>) => {
    let result: ActionResult;
    if (!d.ca) result = { ok: false, message: "CA management is not available in this build" };
    else {
      try {
        result = await d.ca[action]();
      } catch (err) {
        result = { ok: false, message: (err as Error).message };
      }
    }
    if (c.req.header("HX-Request")) return c.html(await CaSection({ ctx: ctx(), status: await caStatus(), result }));
    return c.redirect("/control", 303);
  };
  const redirectorState = (): RedirectorState | undefined => {
    try {
      return d.capture?.redirector();
    } catch (err) {
      return { state: "stopped", detail: `cannot read the redirector's status: ${(err as Error).message}` };
    }
  };
  const pauseState = (): PauseView | undefined => {
    try {
      return d.capture?.pauseState();
    } catch (err) {
      return { paused: false, error: (err as Error).message };
    }
  };
  const captureSection = (result?: ActionResult) =>
    CaptureSection({ ctx: ctx(), status: safeStatus(d.status), redirector: redirectorState(), pause: pauseState(), result });

  const captureAction = (action: "start" | "stop" | "pause" | "resume") => async (c: Context<WebEnv>) => {
    let result: ActionResult;
    try {
      result = d.capture ? await d.capture[action]() : { ok: false, message: `${action} capture is not available in this process` };
    } catch (err) {
      result = { ok: false, message: (err as Error).message };
    }
    if (c.req.header("HX-Request")) return c.html(await captureSection(result));
    return c.redirect("/control", 303);
  };
  app.post("/control/capture/start", captureAction("start"));
  app.post("/control/capture/stop", captureAction("stop"));
  app.post("/control/capture/pause", captureAction("pause"));
  app.post("/control/capture/resume", captureAction("resume"));
  // The section alone: while stopping, it reloads itself from here until the redirector has stopped.
  app.get("/control/capture", async (c) => c.html(await captureSection()));

  app.post("/control/ca/install", caAction("install"));
  app.post("/control/ca/uninstall", caAction("uninstall"));

  return app;
}

function safeStatus(status?: () => Record<string, unknown>): Record<string, unknown> {
  if (!status) return { capture: "not reported by this process" };
  try {
    return status();
  } catch (err) {
    return { error: (err as Error).message };
  }
}
