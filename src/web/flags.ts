// The dashboard's and terminal view's flags, apart from the server so that parsing them (every `oisp up` /
// `oisp sensor`) does not load Hono, the views and htmx: those load only when --web is given.
import type { FlagSpec } from "../util/args.ts";

export const DEFAULT_WEB_PORT = 7777;

const webFlagsHelp = `  --web                   serve the dashboard on http://127.0.0.1:7777
  --web-port PORT         dashboard port (default 7777, or WebPort in settings.json); implies --web
  --web-host HOST         dashboard address (default 127.0.0.1); any non-loopback address needs --web-token
  --web-token TOKEN       require this token: open http://HOST:PORT/?token=TOKEN once (it becomes a cookie),
                          or send "Authorization: Bearer TOKEN"`;

export const viewFlagSpec = {
  web: { type: "boolean" },
  "web-port": { type: "string" },
  "web-host": { type: "string" },
  "web-token": { type: "string" },
  tui: { type: "boolean" },
} satisfies FlagSpec;

export const viewFlagsHelp = `${webFlagsHelp}
  --tui                   show the terminal view (timeline, inventory, processes; q quits)`;

export interface ViewFlags {
  web?: boolean;
  "web-port"?: string;
  /** `oisp sensor --port N` is the same as --web-port N. */
  port?: string;
  "web-host"?: string;
  "web-token"?: string;
  tui?: boolean;
}
