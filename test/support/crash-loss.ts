// A real `oisp up` SIGKILLed in the middle of a burst of real client calls, then started again on the same
// data directory: which answered calls end up stored. Used by test/integration/crash-journal.test.ts and
// bench/crash-loss.ts (issue 12's "answered vs stored after SIGKILL").
import fs from "node:fs";
import path from "node:path";
import { fakeProviderHandler } from "./fake-providers.ts";
import { freePort, readEvents, runOisp, tempHome, waitFor, waitForPort, type OispProcess } from "./oisp-process.ts";
import { startTlsUpstream } from "./upstream.ts";

export interface CrashLossResult {
  answered: number;
  /** Answered calls with their ai.response in SQLite right after the kill (before any restart). */
  storedAtKill: number;
  /** ...and in the JSONL file then. */
  jsonlAtKill: number;
  /** After the restart replayed the journal and stopped cleanly. */
  storedAfterRestart: number;
  jsonlAfterRestart: number;
  /** Markers of answered calls missing from SQLite (or the JSONL) after the restart. */
  missing: string[];
  missingJsonl: string[];
  /** event_ids found more than once in the JSONL file (a replay must not export an event twice). */
  jsonlDuplicates: number;
}

/** One round: burst, SIGKILL after `ms`, restart, clean stop, count. */
export async function crashLossRound(opts: { conc: number; ms: number; log?: (s: string) => void }): Promise<CrashLossResult> {
  const upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
  const home = tempHome("oisp-crash-");
  const upstreamCa = path.join(home, "upstream-ca.pem");
  fs.writeFileSync(upstreamCa, upstream.caPem);
  const db = path.join(home, "events.db");
  const jsonl = path.join(home, "events.jsonl");
  const port = await freePort();
  const start = (): OispProcess =>
    runOisp(["up", "--listen", `127.0.0.1:${port}`, "--upstream-ca", upstreamCa, "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`, "--db", db, "--output", jsonl, "--redaction", "full"], { home });
  try {
    let oisp = start();
    await waitForPort(port, oisp);
    const caFile = path.join(home, "ca", "oisp-ca.pem");
    await waitFor("CA file", () => (fs.existsSync(caFile) ? true : undefined));
    const ca = fs.readFileSync(caFile, "utf8");
    const answered: string[] = [];
    let stop = false;
    let n = 0;
    const worker = async (w: number) => {
      while (!stop) {
        const marker = `crash-${w}-${n++}-m`;
        try {
          const res = await fetch("https://api.openai.com/v1/chat/completions", {
            method: "POST",
            headers: { "content-type": "application/json", authorization: "Bearer sk-crash-test" },
            body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: marker }] }),
            proxy: `http://127.0.0.1:${port}`,
            tls: { ca },
          } as RequestInit);
          const body = (await res.json()) as { choices?: unknown[] };
          if (res.status === 200 && Array.isArray(body.choices)) answered.push(marker);
        } catch {
          if (stop) return;
          await Bun.sleep(5); // the proxy is gone: not answered
        }
      }
    };
    const workers = Array.from({ length: opts.conc }, (_, w) => worker(w));
    // The kill comes `ms` after the first answer (a loaded machine can take seconds to get going).
    await waitFor("a first answer", () => (answered.length > 0 ? true : undefined), 60_000);
    await Bun.sleep(opts.ms);
    const killedPidOf = oisp.proc.pid;
    oisp.proc.kill("SIGKILL");
    await oisp.proc.exited;
    stop = true;
    await Promise.all(workers);
    const count = () => countStored(db, jsonl, answered);
    const atKill = count();
    opts.log?.(`answered ${answered.length}, SQLite ${atKill.sqlite.size}, JSONL ${atKill.jsonl.size} right after SIGKILL`);
    oisp = start();
    await waitForPort(port, oisp);
    // The journal of the killed run is deleted once its replay is committed.
    const journalDir = path.join(home, "journal");
    const killedPid = `-${killedPidOf}-`;
    if (fs.existsSync(journalDir)) {
      await waitFor("replay committed", () => (fs.readdirSync(journalDir).some((f) => f.includes(killedPid)) ? undefined : true), 60_000).catch(() => opts.log?.("the replay was not committed within 60 s"));
    } else opts.log?.("no tap journal (an oisp without one): nothing to replay");
    await oisp.stop();
    const after = count();
    const missing = answered.filter((m) => !after.sqlite.has(m));
    const missingJsonl = answered.filter((m) => !after.jsonl.has(m));
    return {
      answered: answered.length,
      storedAtKill: atKill.sqlite.size,
      jsonlAtKill: atKill.jsonl.size,
      storedAfterRestart: after.sqlite.size,
      jsonlAfterRestart: after.jsonl.size,
      missing,
      missingJsonl,
      jsonlDuplicates: duplicateIds(jsonl),
    };
  } finally {
    await upstream.close();
  }
}

function duplicateIds(jsonl: string): number {
  const seen = new Set<string>();
  let dups = 0;
  for (const line of fs.readFileSync(jsonl, "utf8").split("\n")) {
    const id = /"event_id":"([^"]+)"/.exec(line)?.[1];
    if (!id) continue;
    if (seen.has(id)) dups++;
    seen.add(id);
  }
  return dups;
}

/** Markers (of `answered`) whose call has an ai.response stored, in SQLite and in the JSONL file. */
function countStored(db: string, jsonl: string, answered: string[]): { sqlite: Set<string>; jsonl: Set<string> } {
  const want = new Set(answered);
  const complete = (events: Array<{ event_type: string; event_id: string; data?: any }>) => {
    const markerOf = new Map<string, string>();
    for (const e of events) {
      if (e.event_type !== "ai.request") continue;
      const content = e.data?.messages?.[0]?.content;
      if (typeof content === "string" && want.has(content)) markerOf.set(e.event_id, content);
    }
    const done = new Set<string>();
    for (const e of events) {
      const m = e.event_type === "ai.response" ? markerOf.get(e.data?.request_id) : undefined;
      if (m) done.add(m);
    }
    return done;
  };
  const lines = fs.existsSync(jsonl) ? fs.readFileSync(jsonl, "utf8").split("\n") : [];
  const fromJsonl = lines.flatMap((l) => {
    try {
      return l ? [JSON.parse(l)] : [];
    } catch {
      return []; // a line torn by the kill
    }
  });
  return { sqlite: complete(readEvents(db) as any), jsonl: complete(fromJsonl) };
}

