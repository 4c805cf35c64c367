// Issue 12: a crash of `oisp up` must not lose what clients got answers for. A real `oisp up` is SIGKILLed in
// the middle of a burst of real client calls (Bun fetch through the proxy, TLS intercepted), then started
// again on the same data directory: its tap journal is replayed, and every answered call must be in SQLite
// and in the JSONL file, once. Without the journal the sensor worker's backlog (and the store's last 100 ms)
// died with the process: most of a burst's calls were lost.
import { expect, test } from "bun:test";
import { crashLossRound } from "../support/crash-loss.ts";

test("SIGKILL during a burst, then a restart: every answered call is stored", async () => {
  const res = await crashLossRound({ conc: 12, ms: 1500 });
  console.error(`answered ${res.answered} · right after SIGKILL: SQLite ${res.storedAtKill}, JSONL ${res.jsonlAtKill} · after restart: SQLite ${res.storedAfterRestart}, JSONL ${res.jsonlAfterRestart}`);
  expect(res.answered).toBeGreaterThan(0);
  expect(res.missing).toEqual([]);
  expect(res.missingJsonl).toEqual([]);
  expect(res.jsonlDuplicates).toBe(0);
}, 180_000);
