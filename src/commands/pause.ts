// `oisp pause` / `oisp resume`: capture keeps running and relaying, but records nothing while paused.
import { dataDir as defaultDataDir } from "../config/paths.ts";
import { setCapturePaused } from "../control/pause.ts";
import { parseFlags } from "../util/args.ts";

const help = (verb: "pause" | "resume") =>
  verb === "pause"
    ? `Usage: oisp pause

Pause capture: the running redirector (or \`oisp up\`) keeps relaying every connection but decrypts and
records nothing new until \`oisp resume\`. Connections already open keep their mode. The state is kept in
the data directory, so capture started later (or after a reboot) starts paused too. \`oisp status\` shows it.

  -h, --help   this help`
    : `Usage: oisp resume

Resume capture after \`oisp pause\`: new connections are intercepted and recorded again.

  -h, --help   this help`;

export async function pauseCommand(verb: "pause" | "resume", argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { help: { type: "boolean", short: "h" } }, verb);
  if (values.help) {
    console.log(help(verb));
    return 0;
  }
  const result = await setCapturePaused(defaultDataDir(), verb === "pause", "cli");
  (result.ok ? console.log : console.error)(result.message);
  return result.ok ? 0 : 1;
}
