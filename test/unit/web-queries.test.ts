// The dashboard's read queries against a real store filled with realistic OISP events.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import fs from "node:fs";
import { openStore } from "../../src/store/index.ts";
import { openWebQueries } from "../../src/store/queries.ts";
import { buildProcessTree, flattenTree } from "../../src/view/process-tree.ts";
import type { Cursor } from "../../src/store/queries.ts";
import { aiExchange, iso, PROCESSES, newestFirst, sampleTraffic, systemEvent, type FixtureEvent } from "../support/event-fixtures.ts";
import { webHarness, type WebHarness } from "../support/web-harness.ts";

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const HOUR = 3_600_000;

describe("timeline filters", () => {
  let h: WebHarness;
  const events: FixtureEvent[] = [];
  beforeAll(() => {
    events.push(...sampleTraffic(NOW, 30, 48));
    events.push(
      ...aiExchange({ tsMs: NOW - 5 * 60_000, provider: "anthropic", process: PROCESSES.node, prompt: 'please find the "purple elephant" 100%_done' }),
      ...aiExchange({ tsMs: NOW - 4 * 60_000, provider: "openai", process: PROCESSES.node, mode: "redacted", prompt: "the purple elephant is redacted here" }),
    );
    // A redacted event whose metadata happens to hold the search words: free text must not match it.
    const odd = aiExchange({ tsMs: NOW - 3 * 60_000, mode: "redacted" })[0]!;
    odd.attrs = { conn_id: "x", note: "purple elephant" };
    events.push(odd);
    h = webHarness({ events });
  });
  afterAll(() => h.close());

  const ids = (f: Parameters<WebHarness["queries"]["timeline"]>[0]) => h.queries.timeline(f, { limit: 500 }).rows;

  test("no filter returns everything newest first", () => {
    expect(ids({}).map((r) => r.event_id)).toEqual(newestFirst(events));
  });

  test("equality filters match exactly the events with that column value", () => {
    const anthropic = ids({ provider: "anthropic" });
    expect(anthropic.length).toBe(events.filter((e) => (e.data as any)?.provider?.name === "anthropic").length);
    expect(anthropic.every((r) => r.provider === "anthropic")).toBe(true);
    const node = ids({ process: "node", type: "ai.response" });
    expect(node.length).toBe(events.filter((e) => e.event_type === "ai.response" && (e.process as any).name === "node").length);
    expect(node.every((r) => r.process_name === "node" && r.event_type === "ai.response")).toBe(true);
    expect(ids({ model: "gpt-4o" }).every((r) => r.model === "gpt-4o")).toBe(true);
    expect(ids({ model: "no-such-model" })).toEqual([]);
  });

  test("status filter separates failed responses from successful ones", () => {
    const errors = ids({ status: "error" });
    expect(errors.length).toBe(events.filter((e) => (e.data as any)?.success === false).length);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((r) => r.success === 0 && r.status_code === 429)).toBe(true);
    expect(ids({ status: "ok" }).every((r) => r.success === 1)).toBe(true);
  });

  test("time range keeps [since, until)", () => {
    const since = NOW - 6 * HOUR;
    const until = NOW - HOUR;
    const rows = ids({ sinceMs: since, untilMs: until });
    const expected = events.filter((e) => Date.parse(e.ts) >= since && Date.parse(e.ts) < until);
    expect(rows.map((r) => r.event_id).sort()).toEqual(expected.map((e) => e.event_id).sort());
  });

  test("free text searches full-capture events only, literally (quotes, % and _ are not patterns)", () => {
    const hits = ids({ text: "purple elephant" });
    expect(hits.length).toBe(1);
    expect(hits[0]!.completeness).toBe("full");
    expect(ids({ text: '"purple elephant" 100%_done' }).length).toBe(1);
    expect(ids({ text: "100%xdone" }).length).toBe(0);
    expect(ids({ text: "PURPLE Elephant" }).length).toBe(1); // LIKE is case-insensitive for ASCII
  });

  test("latency and status code come from the stored event", () => {
    const resp = ids({ type: "ai.response", status: "ok" })[0]!;
    expect(resp.latency_ms).toBe(840);
    expect(resp.status_code).toBe(200);
  });

  test("arrivedAfter returns rows stored after a rowid, filtered", () => {
    const mark = h.queries.lastRowid();
    const fresh = [...aiExchange({ tsMs: NOW - 2 * HOUR, provider: "anthropic" }), ...aiExchange({ tsMs: NOW, provider: "openai" })];
    h.insert(fresh);
    const all = h.queries.arrivedAfter({}, mark);
    expect(all.map((r) => r.event_id).sort()).toEqual(fresh.map((e) => e.event_id).sort());
    const anth = h.queries.arrivedAfter({ provider: "anthropic" }, mark);
    expect(anth.length).toBe(2);
    expect(h.queries.arrivedAfter({}, h.queries.lastRowid())).toEqual([]);
  });

  test("distinct values for the filter lists", () => {
    expect(h.queries.distinct("provider")).toEqual(["anthropic", "openai"]);
    expect(h.queries.distinct("event_type")).toEqual(["agent.tool_call", "ai.request", "ai.response"]);
    expect(h.queries.distinct("process_name")).toEqual(["cursor", "node", "python3"]);
  });
});

describe("keyset pagination", () => {
  let h: WebHarness;
  const events: FixtureEvent[] = [];
  beforeAll(() => {
    // 300 events on only 30 distinct milliseconds: ties must be broken by event_id, never skipped or repeated.
    for (let i = 0; i < 100; i++) events.push(...aiExchange({ tsMs: NOW - (i % 10) * 1000, latencyMs: 0, toolCalls: [] }));
    for (let i = 0; i < 100; i++) {
      const e = aiExchange({ tsMs: NOW - 20_000 - (i % 20) * 1000 })[0]!;
      events.push(e);
    }
    h = webHarness({ events });
  });
  afterAll(() => h.close());

  test("walking pages visits every event once, in order, even with new events arriving", () => {
    const expected = newestFirst(events);
    const seen: string[] = [];
    let page = h.queries.timeline({}, { limit: 37 });
    let pages = 1;
    for (;;) {
      seen.push(...page.rows.map((r) => r.event_id));
      if (!page.next) break;
      if (pages === 2) h.insert(aiExchange({ tsMs: NOW + 60_000 })); // newer: must not shift older pages
      page = h.queries.timeline({}, { before: page.next, limit: 37 });
      pages++;
    }
    expect(seen).toEqual(expected);
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(expected.length / 37));
  });

  test("filtered pages are stable too", () => {
    const expected = newestFirst(events.filter((e) => e.event_type === "ai.request"));
    const seen: string[] = [];
    let next: ReturnType<WebHarness["queries"]["timeline"]>["next"];
    do {
      const page = h.queries.timeline({ type: "ai.request", untilMs: NOW + 1 }, { before: next, limit: 19 });
      seen.push(...page.rows.map((r) => r.event_id));
      next = page.next;
    } while (next);
    expect(seen).toEqual(expected);
  });

  test("the query plans walk an index in order (no sort of the whole table) for common and rare filters", () => {
    const db = new Database(h.dbPath, { readonly: true });
    try {
      const plan = (sql: string, ...params: Array<string | number>) =>
        db.query<{ detail: string }, Array<string | number>>(`EXPLAIN QUERY PLAN ${sql}`).all(...params).map((r) => r.detail).join(" | ");
      // What timeline() generates for a common provider (every row matches): +provider keeps the ts_ms index in charge.
      const common = plan("SELECT event_id FROM events WHERE (+provider = ?) ORDER BY ts_ms DESC, event_id DESC LIMIT 101", "openai");
      expect(common).toContain("events_ts_ms_idx");
      expect(common).not.toContain("TEMP B-TREE FOR ORDER BY");
      const deep = plan(
        "SELECT event_id FROM events WHERE (ts_ms <= ? AND (ts_ms < ? OR event_id < ?)) ORDER BY ts_ms DESC, event_id DESC LIMIT 101",
        NOW,
        NOW,
        "Z",
      );
      expect(deep).toContain("events_ts_ms_idx (ts_ms<?)");
      expect(deep).not.toContain("TEMP B-TREE FOR ORDER BY");
    } finally {
      db.close();
    }
  });
});

describe("aggregates", () => {
  let h: WebHarness;
  const events: FixtureEvent[] = [];
  beforeAll(() => {
    events.push(
      ...aiExchange({ tsMs: NOW - 3 * HOUR, provider: "openai", model: "gpt-4o", process: PROCESSES.python, inputTokens: 100, outputTokens: 10, costUsd: 0.5, keyHash: "sha256:aaa" }),
      ...aiExchange({ tsMs: NOW - 2 * HOUR, provider: "openai", model: "gpt-4o", process: PROCESSES.node, inputTokens: 200, outputTokens: 20, costUsd: 0.25, keyHash: "sha256:aaa" }),
      ...aiExchange({ tsMs: NOW - 2 * HOUR + 60_000, provider: "openai", model: "gpt-4o-mini", process: PROCESSES.node, success: false, keyHash: "sha256:bbb" }),
      ...aiExchange({ tsMs: NOW - HOUR, provider: "anthropic", model: "claude-sonnet-4-5", process: PROCESSES.cursor, inputTokens: 1000, outputTokens: 100, costUsd: 1, keyHash: "sha256:ccc" }),
      ...aiExchange({ tsMs: NOW - 40 * 86_400_000, provider: "anthropic", process: PROCESSES.cursor, inputTokens: 5, outputTokens: 5, costUsd: 9 }),
    );
    h = webHarness({ events });
  });
  afterAll(() => h.close());

  test("providers: requests, errors, tokens and cost, optionally since a time", () => {
    const all = Object.fromEntries(h.queries.providers().map((p) => [p.provider, p]));
    expect(all.openai).toMatchObject({ requests: 3, errors: 1, input_tokens: 300, output_tokens: 30, cost_usd: 0.75 });
    expect(all.anthropic).toMatchObject({ requests: 2, errors: 0, input_tokens: 1005, output_tokens: 105, cost_usd: 10 });
    const recent = Object.fromEntries(h.queries.providers(NOW - 86_400_000).map((p) => [p.provider, p]));
    expect(recent.anthropic).toMatchObject({ requests: 1, cost_usd: 1 });
  });

  test("models and apps", () => {
    const models = h.queries.models().map((m) => [m.provider, m.model, m.requests]);
    expect(models).toContainEqual(["openai", "gpt-4o", 2]);
    expect(models).toContainEqual(["openai", "gpt-4o-mini", 1]);
    const apps = Object.fromEntries(h.queries.apps().map((a) => [a.process_name, a]));
    expect(apps.node).toMatchObject({ requests: 2, errors: 1, pids: 1, cost_usd: 0.25 });
    expect(apps.cursor).toMatchObject({ requests: 2 });
  });

  test("accounts group requests by key prefix + fingerprint and add up their responses", () => {
    const accounts = h.queries.accounts();
    const aaa = accounts.find((a) => a.key_hash === "sha256:aaa")!;
    expect(aaa).toMatchObject({ provider: "openai", key_prefix: "sk-proj-", auth_type: "api_key", requests: 2, input_tokens: 300, cost_usd: 0.75 });
    expect(aaa.apps!.split(",").sort()).toEqual(["node", "python3"]);
    expect(accounts.find((a) => a.key_hash === "sha256:bbb")).toMatchObject({ requests: 1, input_tokens: 0 });
  });

  test("processes form a tree under their (unseen) parent shell", () => {
    const rows = h.queries.processes();
    expect(rows.find((r) => r.pid === PROCESSES.python.pid)).toMatchObject({ ppid: 4200, exe: "/usr/bin/python3", process_name: "python3" });
    const roots = buildProcessTree(rows);
    const shell = roots.find((n) => n.pid === 4200)!;
    expect(shell.seen).toBe(false);
    expect(shell.children.map((c) => c.name).sort()).toEqual(["node", "python3"]);
    const cursor = roots.find((n) => n.pid === PROCESSES.cursor.pid)!;
    expect(cursor.providers.map((p) => p.provider)).toEqual(["anthropic"]);
    expect(flattenTree(roots).map((f) => [f.node.name, f.depth])).toContainEqual(["python3", 1]);
  });

  test("inventory and process lists narrow by provider, model, process and type (which apps use a model)", () => {
    expect(h.queries.apps({ model: "gpt-4o" }).map((a) => a.process_name).sort()).toEqual(["node", "python3"]);
    expect(h.queries.apps({ model: "gpt-4o-mini" }).map((a) => a.process_name)).toEqual(["node"]);
    expect(h.queries.models({ provider: "anthropic" }).every((m) => m.provider === "anthropic")).toBe(true);
    expect(h.queries.models({ process: "node" }).map((m) => m.model).sort()).toEqual(["gpt-4o", "gpt-4o-mini"]);
    // Cost per account for one provider; a type filter does not blank an account's response side.
    const openai = h.queries.accounts({ provider: "openai", type: "ai.request" });
    expect(openai.map((a) => a.key_hash).sort()).toEqual(["sha256:aaa", "sha256:bbb"]);
    expect(openai.find((a) => a.key_hash === "sha256:aaa")).toMatchObject({ requests: 2, cost_usd: 0.75 });
    expect(h.queries.providers({ type: "ai.response" }).find((p) => p.provider === "openai")).toMatchObject({ requests: 0, events: 3, errors: 1 });
    expect(h.queries.processes({ provider: "anthropic" }).map((r) => r.pid)).toEqual([PROCESSES.cursor.pid]);
    expect(h.queries.providers({ model: "no-such-model" })).toEqual([]);
  });

  test("filtered lists equal the same filter counted on the events, over hour-rounded ranges", () => {
    const db = new Database(h.dbPath, { readonly: true });
    try {
      const cases = [
        { provider: "openai" },
        { process: "node", type: "ai.response" },
        { model: "gpt-4o", sinceMs: NOW - 2 * HOUR - 5 },
        { sinceMs: NOW - 41 * 86_400_000, untilMs: NOW - 2 * HOUR + 1 },
        { untilMs: NOW - 39 * 86_400_000 },
        { provider: "anthropic", sinceMs: NOW - 90 * 86_400_000, untilMs: NOW - HOUR - 7 },
      ];
      for (const f of cases) {
        const from = f.sinceMs === undefined ? 0 : Math.floor(f.sinceMs / HOUR) * HOUR;
        const until = f.untilMs === undefined ? Number.MAX_SAFE_INTEGER : Math.ceil(f.untilMs / HOUR) * HOUR;
        const expected = db
          .query<{ provider: string; n: number }, [string, string, string, string, number, number]>(
            `SELECT provider, count(*) AS n FROM events WHERE provider IS NOT NULL AND (?1 = '' OR provider = ?1) AND (?2 = '' OR model = ?2)
               AND (?3 = '' OR process_name = ?3) AND (?4 = '' OR event_type = ?4) AND ts_ms >= ?5 AND ts_ms < ?6 GROUP BY provider ORDER BY provider`,
          )
          .all((f as any).provider ?? "", (f as any).model ?? "", (f as any).process ?? "", (f as any).type ?? "", from, until);
        const got = h.queries
          .providers(f)
          .map((p) => ({ provider: p.provider, n: p.events }))
          .sort((a, b) => a.provider.localeCompare(b.provider));
        expect({ f, got }).toEqual({ f, got: expected });
      }
    } finally {
      db.close();
    }
  });

  test("usage buckets per hour add up to the totals", () => {
    const rows = h.queries.usage("provider", HOUR, NOW - 86_400_000);
    const sum = (p: string, k: "requests" | "tokens" | "cost_usd") => rows.filter((r) => r.series === p).reduce((a, r) => a + r[k], 0);
    expect(sum("openai", "requests")).toBe(3);
    expect(sum("openai", "tokens")).toBe(330);
    expect(sum("anthropic", "cost_usd")).toBe(1);
    expect(rows.every((r) => r.bucket_ms % HOUR === 0)).toBe(true);
  });

  test("usage buckets stay whole with a -0 or fractional offset (UTC servers pass -0)", () => {
    const plain = h.queries.usage("provider", 86_400_000, NOW - 7 * 86_400_000, 0);
    expect(h.queries.usage("provider", 86_400_000, NOW - 7 * 86_400_000, -0)).toEqual(plain);
    expect(h.queries.usage("provider", 86_400_000, NOW - 7 * 86_400_000, 0.4)).toEqual(plain);
    expect(plain.every((r) => Number.isInteger(r.bucket_ms) && r.bucket_ms % 86_400_000 === 0)).toBe(true);
  });

  test("a process tree with a pid cycle still lists every process once", () => {
    const base = { provider: "openai", events: 1, requests: 1, cost_usd: 0, last_ms: 1, exe: null, parent_name: null };
    const roots = buildProcessTree([
      { ...base, pid: 10, ppid: 11, process_name: "a" },
      { ...base, pid: 11, ppid: 10, process_name: "b" },
      { ...base, pid: 12, ppid: 12, process_name: "self" },
    ]);
    expect(flattenTree(roots).map((f) => f.node.pid).sort()).toEqual([10, 11, 12]);
  });
});

describe("export chunks", () => {
  test("every matching event once, oldest first, in bounded chunks; later arrivals excluded", () => {
    const events = sampleTraffic(NOW, 40, 10);
    const h = webHarness({ events });
    try {
      const gen = h.queries.exportChunks({ provider: "openai" }, 7);
      const first = gen.next();
      h.insert(aiExchange({ tsMs: NOW + HOUR, provider: "openai" })); // arrives mid-export
      const rows = [first.value!, ...gen].flat();
      const expected = events.filter((e) => (e.data as any)?.provider?.name === "openai");
      expect(rows.map((r) => r.event_id)).toEqual(newestFirst(expected).reverse());
      expect(first.value!.length).toBe(7);
      expect(JSON.parse(rows[0]!.json).event_id).toBe(rows[0]!.event_id);
    } finally {
      h.close();
    }
  });
});

test("fixture timestamps round-trip through iso()", () => {
  expect(Date.parse(iso(NOW))).toBe(NOW);
});

describe("rollups (trigger-maintained hourly and daily totals)", () => {
  const events = sampleTraffic(NOW, 90, 72);
  const direct = (db: Database) =>
    db
      .query<{ provider: string; events: number; requests: number; errors: number; tokens: number; cost: number }, []>(
        `SELECT provider, count(*) AS events, sum(event_type = 'ai.request') AS requests, coalesce(sum(success = 0), 0) AS errors,
           coalesce(sum(input_tokens), 0) + coalesce(sum(output_tokens), 0) AS tokens, round(coalesce(sum(cost_usd), 0), 9) AS cost
         FROM events WHERE provider IS NOT NULL GROUP BY provider ORDER BY provider`,
      )
      .all();
  const viaRollup = (h: WebHarness) =>
    h.queries
      .providers()
      .map((p) => ({ provider: p.provider, events: p.events, requests: p.requests, errors: p.errors, tokens: p.input_tokens + p.output_tokens, cost: Number(p.cost_usd.toFixed(9)) }))
      .sort((a, b) => a.provider.localeCompare(b.provider));

  test("totals equal a direct count over the events, replays included", () => {
    const h = webHarness({ events });
    try {
      h.insert(events.slice(0, 50)); // a replay: ignored by the store, so not counted twice
      const db = new Database(h.dbPath, { readonly: true });
      expect(viaRollup(h)).toEqual(direct(db));
      db.close();
      // Responses inherit their request's credential.
      const accounts = h.queries.accounts();
      const requests = events.filter((e) => e.event_type === "ai.request").length;
      expect(accounts.reduce((a, r) => a + r.requests, 0)).toBe(requests);
      const responseTokens = events.filter((e) => e.event_type === "ai.response").reduce((a, e) => a + ((e.data as any).usage?.prompt_tokens ?? 0), 0);
      expect(accounts.reduce((a, r) => a + r.input_tokens, 0)).toBe(responseTokens);
    } finally {
      h.close();
    }
  });

  test("a since inside a day combines whole days and hours, and matches the events from that hour on", () => {
    const h = webHarness({ events });
    try {
      const db = new Database(h.dbPath, { readonly: true });
      for (const since of [NOW - 5 * HOUR - 1234, NOW - 50 * HOUR + 17, NOW - 30 * 86_400_000]) {
        const from = Math.floor(since / HOUR) * HOUR;
        const expected = db
          .query<{ provider: string; n: number }, [number]>("SELECT provider, count(*) AS n FROM events WHERE provider IS NOT NULL AND ts_ms >= ? GROUP BY provider ORDER BY provider")
          .all(from);
        const got = h.queries.providers(since).map((p) => ({ provider: p.provider, n: p.events })).sort((a, b) => a.provider.localeCompare(b.provider));
        expect(got).toEqual(expected);
      }
      // Daily usage in UTC comes from the day rollup and equals the hourly one summed.
      const total = (rows: Array<{ requests: number }>) => rows.reduce((a, r) => a + r.requests, 0);
      const requests = events.filter((e) => e.event_type === "ai.request").length;
      expect(total(h.queries.usage("provider", 86_400_000, 0, 0))).toBe(requests); // day rollup
      expect(total(h.queries.usage("provider", 86_400_000, 0, 3_600_000))).toBe(requests); // hour rollup, shifted days
      expect(h.queries.usage("provider", 86_400_000, 0, 3_600_000).every((r) => (r.bucket_ms + 3_600_000) % 86_400_000 === 0)).toBe(true);
      db.close();
    } finally {
      h.close();
    }
  });

  test("a database written before the rollup existed is backfilled when opened", () => {
    const h = webHarness({ events });
    // Sums of costs may differ in the last float bit with the order of addition.
    const round = <T extends { cost_usd: number }>(rows: T[]) => rows.map((r) => ({ ...r, cost_usd: Number(r.cost_usd.toFixed(9)) }));
    const before = { providers: viaRollup(h), accounts: round(h.queries.accounts()), processes: round(h.queries.processes()), usage: round(h.queries.usage("model", HOUR, 0)) };
    h.queries.close();
    h.store.close();
    // Turn the file back into a 0000_init database: no rollup table, migration not recorded. (0001 creates
    // a trigger that 0004 drops again, 0006 adds a column: they run on reopening, as on a real 0000-era database.)
    const raw = new Database(h.dbPath);
    raw.run("DROP TABLE event_rollup_hour");
    raw.run("DROP TABLE event_rollup_day");
    raw.run("DELETE FROM __oisp_migrations WHERE tag IN ('0001_rollup', '0004_rollups_in_store', '0006_rollup_first_ms')");
    raw.close();
    const reopened = openStore(h.dbPath);
    const q = openWebQueries(h.dbPath);
    try {
      expect(q.providers().map((p) => p.provider).sort()).toEqual(before.providers.map((p) => p.provider));
      expect(round(q.accounts())).toEqual(before.accounts);
      expect(round(q.processes())).toEqual(before.processes);
      expect(round(q.usage("model", HOUR, 0))).toEqual(before.usage);
      // And it keeps counting afterwards.
      reopened.insertEvents(aiExchange({ tsMs: NOW, provider: "anthropic" }));
      const anth = q.providers().find((p) => p.provider === "anthropic")!;
      expect(anth.requests).toBe(before.providers.find((p) => p.provider === "anthropic")!.requests + 1);
    } finally {
      q.close();
      reopened.close();
      fs.rmSync(h.dir, { recursive: true, force: true });
    }
  });
});

describe("free-text search reads a bounded window per page", () => {
  test("pages through every match, window by window, and says how far it searched", () => {
    const events: FixtureEvent[] = [];
    for (let i = 0; i < 40; i++) {
      events.push(...aiExchange({ tsMs: NOW - i * 60_000, prompt: i % 10 === 0 ? `needle number ${i}` : `hay ${i}` }));
    }
    const h = webHarness({ events });
    try {
      const expected = events.filter((e) => e.event_type === "ai.request" && JSON.stringify(e).includes("needle")).map((e) => e.event_id);
      expect(expected.length).toBe(4);
      // With the real window (100k) one page holds them all.
      expect(h.queries.timeline({ text: "needle" }, { limit: 50 }).rows.map((r) => r.event_id).sort()).toEqual([...expected].sort());
      // A small window: walk the pages; each says where it stopped, and together they find every match once.
      const seen: string[] = [];
      let before: Cursor | undefined;
      let pages = 0;
      for (; pages < 100; pages++) {
        const page = h.queries.timeline({ text: "needle" }, { limit: 50, before, textScanRows: 15 });
        seen.push(...page.rows.map((r) => r.event_id));
        if (!page.next) break;
        expect(page.searchedToMs).toBeDefined();
        before = page.next;
      }
      expect(pages).toBeGreaterThan(3);
      expect(seen).toEqual(h.queries.timeline({ text: "needle" }, { limit: 50 }).rows.map((r) => r.event_id));
    } finally {
      h.close();
    }
  });

  test("a window ending in a millisecond shared by more events than it scans still moves on", () => {
    // Three events in one millisecond, the match older: a 2-row window's floor is that millisecond, and the
    // next window (strictly below it) must not count its events again, or it finds the same floor forever.
    const events = [0, 1, 2].map(() => systemEvent("file.write", NOW, PROCESSES.node, { path: "/tmp/hay" }, "full"));
    events.push(systemEvent("file.write", NOW - 1000, PROCESSES.node, { path: "/tmp/needle" }, "full"));
    const h = webHarness({ events });
    try {
      const first = h.queries.timeline({ text: "needle" }, { limit: 50, textScanRows: 2 });
      expect(first).toEqual({ rows: [], next: { tsMs: NOW, eventId: "0" }, searchedToMs: NOW });
      const second = h.queries.timeline({ text: "needle" }, { limit: 50, textScanRows: 2, before: first.next });
      expect(second.rows.map((r) => r.event_id)).toEqual([events[3]!.event_id]);
      expect(second.next).toBeUndefined();
    } finally {
      h.close();
    }
  });
});
