// bench/crash-loss.ts: issue 12's "answered vs stored after SIGKILL". A burst of OpenAI chat calls (Bun fetch,
// `--conc` at once, each with its own marker) goes through a real `oisp up` (source tree, or OISP_BIN) to a local
// TLS upstream; `oisp up` is SIGKILLed `--ms` after the first answer, then started again on the same data
// directory (which replays its tap journal) and stopped cleanly. Every call a client got a whole answer for
// should then be in SQLite and in the JSONL file.
//
//   bun bench/crash-loss.ts [--conc 24] [--ms 1500] [--rounds 1]
// Prints one line per round; exits 1 if an answered call is missing after the restart.
import { crashLossRound } from "../test/support/crash-loss.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};

const rounds = opt("rounds", 1);
let failed = false;
for (let r = 1; r <= rounds; r++) {
  const res = await crashLossRound({ conc: opt("conc", 24), ms: opt("ms", 1500), log: (s) => console.error(s) });
  const lost = res.missing.length ? ` (${res.missing.slice(0, 5).join(", ")}${res.missing.length > 5 ? ", ..." : ""})` : "";
  console.log(
    `round ${r}: answered ${res.answered} · right after SIGKILL: SQLite ${res.storedAtKill}, JSONL ${res.jsonlAtKill} · after restart: SQLite ${res.storedAfterRestart}, JSONL ${res.jsonlAfterRestart} · missing: SQLite ${res.missing.length}${lost}, JSONL ${res.missingJsonl.length}`,
  );
  failed ||= res.missing.length > 0 || res.missingJsonl.length > 0;
}
process.exit(failed ? 1 : 0);
