// Migration 0003: one call, one model. A request asks for an alias (gpt-4o-mini), the provider answers
// with a dated snapshot (gpt-4o-mini-2024-07-18); the rollups (and so the dashboard's and the terminal's
// inventory) count both events under the requested model, and list the snapshot beside it.
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { toEventRow } from "../../src/store/columns.ts";
import { openStore } from "../../src/store/index.ts";
import { applyMigrations } from "../../src/store/migrate.ts";
import { migrations } from "../../src/store/migrations/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { aiExchange, PROCESSES, type FixtureEvent } from "../support/event-fixtures.ts";

const SNAP = "gpt-4o-mini-2024-07-18";
const T0 = Date.UTC(2026, 2, 1, 10);
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function dbPath(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-call-model-"));
  dirs.push(d);
  return path.join(d, "oisp.db");
}

/** Two alias calls answered by the snapshot (one a 429), one answered by the alias, one other model. */
function traffic(t: number): FixtureEvent[] {
  return [
    ...aiExchange({ tsMs: t, model: "gpt-4o-mini", responseModel: SNAP, inputTokens: 1000, outputTokens: 100, costUsd: 0.0002 }),
    ...aiExchange({ tsMs: t + 60_000, model: "gpt-4o-mini", responseModel: SNAP, success: false, statusCode: 429, process: PROCESSES.node }),
    ...aiExchange({ tsMs: t + 120_000, model: "gpt-4o-mini", inputTokens: 500, outputTokens: 50, costUsd: 0.0001 }),
    ...aiExchange({ tsMs: t + 180_000, model: "gpt-4o", inputTokens: 10, outputTokens: 1, costUsd: 0.00003 }),
  ];
}

/** The inventory's model rows, as figures (computed from the events above by hand). */
const EXPECTED = [
  { model: "gpt-4o-mini", answered_by: [SNAP], requests: 3, errors: 1, input_tokens: 1500, output_tokens: 150, cost: 300 },
  { model: "gpt-4o", answered_by: [], requests: 1, errors: 0, input_tokens: 10, output_tokens: 1, cost: 30 },
];

function modelRows(file: string) {
  const q = openWebQueries(file);
  try {
    return q.models().map((m) => ({
      model: m.model,
      answered_by: m.answered_by,
      requests: m.requests,
      errors: m.errors,
      input_tokens: m.input_tokens,
      output_tokens: m.output_tokens,
      cost: Math.round(m.cost_usd * 1e6),
    }));
  } finally {
    q.close();
  }
}

describe("one call, one model row", () => {
  test("the store counts a response under its request's model; the snapshot is listed beside it", () => {
    const file = dbPath();
    const store = openStore(file);
    const events = traffic(T0);
    // The first call in one batch (the request remembered in memory); the others' responses after a
    // restart, when the store finds their requests through the table.
    store.insertEvents(events.slice(0, 2));
    store.insertEvents(events.filter((e) => e.event_type === "ai.request"));
    store.close();
    const again = openStore(file);
    again.insertEvents(events);
    again.close();
    expect(modelRows(file)).toEqual(EXPECTED);
    // The usage chart reads the same rollups: one series per requested model.
    const q = openWebQueries(file);
    expect([...new Set(q.usage("model", 3_600_000, T0 - 3_600_000).map((b) => b.series))].sort()).toEqual(["gpt-4o", "gpt-4o-mini"]);
    q.close();
  });

  test("a response without a stored request keeps its own model", () => {
    const file = dbPath();
    const store = openStore(file);
    const [, orphan] = aiExchange({ tsMs: T0, model: "gpt-4o-mini", responseModel: SNAP });
    store.insertEvents([orphan!]);
    store.close();
    expect(modelRows(file).map((m) => [m.model, m.answered_by])).toEqual([[SNAP, []]]);
  });

  test("migration 0003 recounts a database written by 0002's trigger (split rows become one)", () => {
    const file = dbPath();
    const old = new Database(file);
    applyMigrations(old, migrations.slice(0, migrations.findIndex((m) => m.tag === "0003_call_model")));
    const cols = ["event_id", "ts", "ts_ms", "event_type", "provider", "model", "pid", "process_name", "request_id", "conn_id", "success",
      "input_tokens", "output_tokens", "cost_usd", "completeness", "json", "key_prefix", "key_hash", "auth_type"] as const;
    const stmt = old.prepare(`INSERT INTO events (${cols.join(", ")}) VALUES (${cols.map(() => "?").join(", ")})`);
    for (const e of traffic(T0)) {
      const r = toEventRow(e)!;
      stmt.run(r.eventId, r.ts, r.tsMs, r.eventType, r.provider ?? null, r.model ?? null, r.pid ?? null, r.processName ?? null, r.requestId ?? null,
        r.connId ?? null, r.success ?? null, r.inputTokens ?? null, r.outputTokens ?? null, r.costUsd ?? null, r.completeness ?? null, r.json,
        null, null, null);
    }
    stmt.finalize();
    // Before: the alias has the requests, the snapshot the tokens and cost.
    const split = old.query("SELECT model, sum(events) AS n FROM event_rollup_day WHERE event_type = 'ai.response' GROUP BY model ORDER BY model").all();
    expect(split).toEqual([{ model: "gpt-4o", n: 1 }, { model: "gpt-4o-mini", n: 1 }, { model: SNAP, n: 2 }]);
    old.close();

    openStore(file).close(); // applies 0003
    expect(modelRows(file)).toEqual(EXPECTED);
    // Later inserts are rolled up by the store (0004): one more alias call answered by the snapshot.
    const store = openStore(file);
    store.insertEvents(aiExchange({ tsMs: T0 + 3_600_000, model: "gpt-4o-mini", responseModel: SNAP, inputTokens: 1, outputTokens: 1, costUsd: 0.000001 }));
    store.close();
    expect(modelRows(file)[0]).toEqual({ ...EXPECTED[0]!, requests: 4, input_tokens: 1501, output_tokens: 151, cost: 301 });
    // The hour and day rollups agree with a GROUP BY over the events under the call's model.
    const raw = new Database(file, { readonly: true });
    for (const [table, ms] of [["event_rollup_hour", 3_600_000], ["event_rollup_day", 86_400_000]] as const) {
      const fromRollup = raw.query(`SELECT bucket_ms, event_type, model, sum(events) AS n, sum(input_tokens) AS i FROM ${table} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`).all();
      const fromEvents = raw
        .query(`SELECT (ts_ms / ${ms}) * ${ms} AS bucket_ms, event_type, coalesce(call_model, model, '') AS model, count(*) AS n, sum(coalesce(input_tokens, 0)) AS i
                FROM events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`)
        .all();
      expect(fromRollup).toEqual(fromEvents);
    }
    raw.close();
  });
});
