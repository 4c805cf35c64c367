// The dashboard's routes through app.request() over a real temp store: security gates, every page,
// filters, pagination, export. No sockets; the browser test covers the same app over a real server.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import type { WebQueries } from "../../src/store/queries.ts";
import { createWebApp } from "../../src/web/app.ts";
import { CSV_COLUMNS } from "../../src/web/export.ts";
import { allowedHostHeaders } from "../../src/web/security.ts";
import { aiExchange, PROCESSES, newestFirst, sampleTraffic, type FixtureEvent } from "../support/event-fixtures.ts";
import { CSRF, decodeEntities, linkedUrls, rowIds, webHarness, type WebHarness } from "../support/web-harness.ts";

const NOW = Date.UTC(2025, 5, 15, 12, 0, 0);
const HOUR = 3_600_000;

/** Parses RFC 4180 CSV (quoted fields, doubled quotes, CRLF) into rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") row.push(field), (field = "");
    else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(field), rows.push(row), (row = []), (field = ""), i++;
    } else field += ch;
  }
  if (field !== "" || row.length) row.push(field), rows.push(row);
  return rows;
}

describe("security gates", () => {
  let h: WebHarness;
  beforeAll(() => {
    h = webHarness({ events: aiExchange({ tsMs: NOW - HOUR }), now: () => NOW });
  });
  afterAll(() => h.close());

  test("a foreign Host header (DNS rebinding) is refused on every route", async () => {
    for (const url of ["/", "/inventory", "/control", "/export/events.jsonl", "/static/app.css"]) {
      const res = await h.get(url, { host: "evil.example:7777" });
      expect(res.status).toBe(421);
      expect(await res.text()).not.toContain("ai.request");
    }
    expect((await h.get("/", { host: "127.0.0.1:8888" })).status).toBe(421); // right name, wrong port
    expect((await h.get("/", { host: "localhost:7777" })).status).toBe(200);
    expect((await h.get("/", { host: "[::1]:7777" })).status).toBe(200);
  });

  test("every POST needs the CSRF token (form field or header)", async () => {
    const before = fs.existsSync(path.join(h.dir, "settings.json"));
    for (const url of ["/control/settings", "/control/ca/install", "/control/ca/uninstall"]) {
      const none = await h.post(url, { ProxyPort: "8081" });
      expect(none.status).toBe(403);
      const wrong = await h.post(url, { _csrf: "not-the-token", ProxyPort: "8081" });
      expect(wrong.status).toBe(403);
      const wrongHeader = await h.post(url, {}, { "X-CSRF-Token": "nope" });
      expect(wrongHeader.status).toBe(403);
    }
    expect(fs.existsSync(path.join(h.dir, "settings.json"))).toBe(before);
    const cross = await h.post("/control/settings", { _csrf: CSRF }, { "sec-fetch-site": "cross-site" });
    expect(cross.status).toBe(403);
    const ok = await h.post("/control/settings", {}, { "X-CSRF-Token": CSRF, "HX-Request": "true" });
    expect(ok.status).toBe(200);
  });

  test("pages carry strict headers: CSP without inline script, no framing, no caching", async () => {
    const res = await h.get("/");
    expect(res.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(res.headers.get("content-security-policy")).not.toContain("unsafe-inline");
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(res.headers.get("cache-control")).toBe("no-store");
    const html = await res.text();
    expect(html).not.toMatch(/<script>(?!<\/script>)|<script(?![^>]*\ssrc=)[^>]*>/);
    expect(html).toContain(`name="csrf-token" content="${CSRF}"`);
  });

  test("embedded assets are served, versioned and cacheable; unknown ones 404", async () => {
    const html = await (await h.get("/")).text();
    const assets = linkedUrls(html).filter((u) => u.startsWith("/static/"));
    expect(assets.length).toBe(3);
    for (const url of assets) {
      const res = await h.get(url);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toContain("immutable");
      expect((await res.text()).length).toBeGreaterThan(500);
    }
    const htmx = await (await h.get(assets.find((u) => u.includes("htmx"))!)).text();
    expect(htmx).toContain("htmx");
    expect((await h.get("/static/nope.js")).status).toBe(404);
  });
});

describe("token mode", () => {
  let h: WebHarness;
  const TOKEN = "s3cret-token-for-tests";
  beforeAll(() => {
    h = webHarness({ events: aiExchange({ tsMs: NOW - HOUR }), accessToken: TOKEN, now: () => NOW });
  });
  afterAll(() => h.close());

  test("without the token every page is 401", async () => {
    for (const url of ["/", "/event/x", "/inventory", "/export/events.csv"]) expect((await h.get(url)).status).toBe(401);
    expect((await h.get("/?token=wrong")).status).toBe(401);
    expect((await h.get("/", { authorization: "Bearer wrong" })).status).toBe(401);
  });

  test("?token= sets a session cookie (not the token) and redirects the token out of the address", async () => {
    const res = await h.get(`/inventory?range=7d&token=${TOKEN}`);
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/inventory?range=7d");
    const cookie = res.headers.get("set-cookie")!;
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).not.toContain(TOKEN);
    const pair = cookie.split(";")[0]!;
    expect((await h.get("/inventory", { cookie: pair })).status).toBe(200);
    expect((await h.get("/inventory", { cookie: "oisp_session=forged" })).status).toBe(401);
  });

  test("Authorization: Bearer works; POST still needs CSRF on top", async () => {
    expect((await h.get("/", { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await h.post("/control/settings", {}, { authorization: `Bearer ${TOKEN}` })).status).toBe(403);
    expect((await h.post("/control/settings", { _csrf: CSRF }, { authorization: `Bearer ${TOKEN}`, "HX-Request": "1" })).status).toBe(200);
  });

  test("the Host check runs before the token: a rebinding page with a stolen cookie still fails", async () => {
    expect((await h.get(`/?token=${TOKEN}`, { host: "evil.example:7777" })).status).toBe(421);
  });
});

describe("pages with fixture events", () => {
  let h: WebHarness;
  const events: FixtureEvent[] = [];
  let toolExchange: FixtureEvent[];
  beforeAll(() => {
    events.push(...sampleTraffic(NOW, 60, 48));
    toolExchange = aiExchange({
      tsMs: NOW - 10 * 60_000,
      provider: "anthropic",
      process: PROCESSES.node,
      prompt: "Find <b>the</b> bug in parse()",
      answer: "The bug is an off-by-one.",
      thinking: "Look at the loop bounds first.",
      toolCalls: [{ name: "grep_repo", arguments: '{"pattern":"parse("}' }],
    });
    events.push(...toolExchange);
    h = webHarness({ events, now: () => NOW });
  });
  afterAll(() => h.close());

  test("timeline: newest first, 100 per page, every row links to its detail", async () => {
    const res = await h.get("/");
    expect(res.status).toBe(200);
    const html = await res.text();
    const ids = rowIds(html);
    expect(ids).toEqual(newestFirst(events).slice(0, 100));
    expect(html).toContain('id="older"');
    expect(html).toContain('data-live="on"');
    expect(html).toContain("Full");
    expect(html).toContain("Redacted");
  });

  test("pagination walks every event once through the Older links", async () => {
    const seen: string[] = [];
    let url: string | undefined = "/";
    for (let pages = 0; url && pages < 20; pages++) {
      const html: string = await (await h.get(url)).text();
      seen.push(...rowIds(html));
      const older: string | undefined = /<a id="older" href="([^"]+)"/.exec(html)?.[1];
      url = older ? decodeEntities(older) : undefined;
      if (pages > 0) expect(html).toContain('data-live="off"');
    }
    expect(seen).toEqual(newestFirst(events));
  });

  test("filters narrow the rows and survive into pager and export links", async () => {
    const html = await (await h.get("/?provider=anthropic&type=ai.response")).text();
    const expected = newestFirst(events.filter((e) => e.event_type === "ai.response" && (e.data as { provider: { name: string } }).provider.name === "anthropic"));
    expect(rowIds(html)).toEqual(expected);
    expect(html).toContain('<option value="anthropic" selected="">');
    const links = linkedUrls(html).filter((u) => u.startsWith("/export/"));
    expect(links).toEqual(["/export/events.jsonl?provider=anthropic&type=ai.response", "/export/events.csv?provider=anthropic&type=ai.response"]);

    const errors = rowIds(await (await h.get("/?status=error")).text());
    expect(errors.length).toBe(events.filter((e) => (e.data as { success?: boolean }).success === false).length);

    const recent = rowIds(await (await h.get("/?range=1h")).text());
    expect(recent.sort()).toEqual(events.filter((e) => Date.parse(e.ts) >= NOW - HOUR).map((e) => e.event_id).sort());

    const text = rowIds(await (await h.get(`/?q=${encodeURIComponent("<b>the</b> bug")}`)).text());
    expect(text).toEqual([toolExchange[0]!.event_id]);

    const none = await (await h.get("/?model=no-such-model")).text();
    expect(rowIds(none)).toEqual([]);
    expect(none).toContain("No events match this filter.");
  });

  test("bad filter values are dropped, not errors", async () => {
    const res = await h.get("/?range=forever&status=maybe&before=garbage&from=yesterday");
    expect(res.status).toBe(200);
    expect(rowIds(await res.text()).length).toBe(100);
  });

  test("event detail: request and response side by side, tool calls, thinking, raw JSON, related links", async () => {
    const [req, resp, tool] = toolExchange;
    const html = await (await h.get(`/event/${resp!.event_id}`)).text();
    expect(html).toContain("Find &lt;b&gt;the&lt;/b&gt; bug in parse()"); // escaped, never markup
    expect(html).not.toContain("<b>the</b>");
    expect(html).toContain("The bug is an off-by-one.");
    expect(html).toContain("grep_repo");
    expect(html).toContain("Look at the loop bounds first.");
    expect(html).toContain("claude-sonnet-4-5");
    const links = linkedUrls(html);
    expect(links).toContain(`/event/${req!.event_id}`);
    expect(links).toContain(`/event/${tool!.event_id}`);
    // Opening the request shows the same pair.
    const reqHtml = await (await h.get(`/event/${req!.event_id}`)).text();
    expect(reqHtml).toContain("The bug is an off-by-one.");
    expect((await h.get("/event/does-not-exist")).status).toBe(404);
  });

  test("redacted events show markers (length + hash), not content", async () => {
    const redacted = events.find((e) => e.event_type === "ai.request" && (e.confidence as { completeness: string }).completeness === "redacted")!;
    const html = await (await h.get(`/event/${redacted.event_id}`)).text();
    expect(html).toContain("redacted (");
    expect(html).toContain("chars");
    expect(html).not.toContain("List the files in the project");
  });

  test("inventory lists providers, models, apps and accounts with totals", async () => {
    const html = await (await h.get("/inventory?range=all")).text();
    for (const s of ["openai", "anthropic", "gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "python3", "node", "cursor", "sk-proj-", "sk-ant-a"]) {
      expect(html).toContain(s);
    }
    // Providers table: requests per provider as stored, shown by display name, linked by id; the filter
    // bar's provider choices likewise (the value stays the id the URL carries).
    for (const [provider, shown] of [["openai", "OpenAI"], ["anthropic", "Anthropic"]] as const) {
      const n = events.filter((e) => e.event_type === "ai.request" && (e.data as { provider: { name: string } }).provider.name === provider).length;
      expect(html).toMatch(new RegExp(`<a href="/\\?provider=${provider}">${shown}</a></td><td class="num">${n}</td>`));
      expect(html).toContain(`<option value="${provider}">${shown}</option>`);
    }
  });

  test("processes page shows the tree: bash (4200) above python3 and node", async () => {
    const page = await (await h.get("/processes?range=all")).text();
    // The filter bar above lists process names too: look in the tree only.
    const html = page.slice(page.indexOf("tree-table"));
    const bash = html.indexOf("4200");
    expect(bash).toBeGreaterThan(0);
    expect(html.indexOf("python3")).toBeGreaterThan(bash);
    expect(html).toContain("cursor");
    expect(html).toMatch(/<span class="chip"[^>]*>OpenAI · \d+<\/span>/); // provider chips by display name
  });

  test("inventory and processes take the timeline's filters: which apps use a model, one provider's accounts", async () => {
    const html = await (await h.get("/inventory?range=all&model=gpt-4o-mini")).text();
    // The filter bar is the timeline's, with the chosen model selected and status left out.
    expect(html).toContain('<option value="gpt-4o-mini" selected="">gpt-4o-mini</option>');
    expect(html).not.toContain('name="status"');
    const apps = new Set(events.filter((e) => e.event_type === "ai.request" && (e.data as { model?: { id?: string } }).model?.id === "gpt-4o-mini").map((e) => (e.process as { name: string }).name));
    expect(apps.size).toBeGreaterThan(0);
    const appsPanel = html.slice(html.indexOf("Apps ("), html.indexOf("Models ("));
    for (const app of ["python3", "node", "cursor"]) expect(appsPanel.includes(`>${app}</a>`)).toBe(apps.has(app));
    // Row links open the timeline with the page's filters kept.
    expect(html).toContain(`href="/?model=gpt-4o-mini&amp;provider=openai"`);
    const anthropic = await (await h.get("/inventory?range=all&provider=anthropic")).text();
    const accounts = anthropic.slice(anthropic.indexOf("Accounts ("));
    expect(accounts).toContain("sk-ant-a");
    expect(accounts).not.toContain("sk-proj-");
    const procs = await (await h.get("/processes?range=all&provider=anthropic")).text();
    const tree = procs.slice(procs.indexOf("tree-table"));
    expect(tree).toContain("cursor");
    expect(tree).not.toContain("python3");
    // Status and free text from a timeline link are ignored here rather than breaking the page.
    expect((await h.get("/inventory?status=error&q=x&range=bogus")).status).toBe(200);
    // An Object.prototype name is no range either: the list falls back to its default, like "bogus".
    expect(await (await h.get("/inventory?range=toString")).text()).toBe(await (await h.get("/inventory?range=bogus")).text());
  });

  test("usage page draws a chart with one series per provider", async () => {
    for (const q of ["", "?metric=tokens&by=model&range=30d", "?metric=cost&bucket=day&range=90d", "?metric=requests&bucket=hour&range=24h"]) {
      const res = await h.get(`/usage${q}`);
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(html).toContain("<svg");
      expect(html).toContain("<rect");
    }
    // A range named after an Object.prototype member is unknown, not a key: the page falls back to 7 days.
    const proto = await h.get("/usage?range=constructor");
    expect(proto.status).toBe(200);
    expect(await proto.text()).toBe(await (await h.get("/usage?range=7d")).text());
    // Hourly bars only up to 7 days: a longer range is drawn by day whatever the query asks.
    const usage = async (q: string) => (await h.get(`/usage?${q}`)).text();
    expect(await usage("bucket=hour&range=30d")).toBe(await usage("bucket=day&range=30d"));
    expect(await usage("bucket=hour&range=7d")).not.toBe(await usage("bucket=day&range=7d"));
    expect(await usage("range=24h")).toBe(await usage("bucket=hour&range=24h"));
    const html = await (await h.get("/usage?by=provider&range=7d")).text();
    expect(html).toContain("openai");
    expect(html).toContain("anthropic");
  });

  test("control page shows capture status, CA status and the settings form", async () => {
    const html = await (await h.get("/control")).text();
    expect(html).toContain("Local certificate authority");
    expect(html).toContain('name="ProxyPort"');
    expect(html).toContain(`name="_csrf" value="${CSRF}"`);
  });

  test("live rows: /timeline/rows returns only rows stored after the cursor, matching the filter", async () => {
    const cursor = Number(/data-cursor="(\d+)"/.exec(await (await h.get("/")).text())![1]);
    const fresh = [...aiExchange({ tsMs: NOW - 1000, provider: "openai" }), ...aiExchange({ tsMs: NOW - 500, provider: "anthropic" })];
    h.insert(fresh);
    const res = await h.get(`/timeline/rows?after=${cursor}&provider=anthropic`);
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("x-oisp-cursor"))).toBe(cursor + fresh.length);
    const ids = rowIds(await res.text());
    expect(ids.sort()).toEqual(fresh.filter((e) => (e.data as { provider: { name: string } }).provider.name === "anthropic").map((e) => e.event_id).sort());
    expect(rowIds(await (await h.get(`/timeline/rows?after=${cursor + fresh.length}`)).text())).toEqual([]);
    events.push(...fresh);
  });
});

describe("export", () => {
  let h: WebHarness;
  const events: FixtureEvent[] = [];
  beforeAll(() => {
    events.push(...sampleTraffic(NOW, 400, 72)); // > one 500-row chunk
    const odd = aiExchange({ tsMs: NOW - 60_000, process: { pid: 9, name: '=cmd|"x",\nname' } });
    events.push(...odd);
    h = webHarness({ events, now: () => NOW });
  });
  afterAll(() => h.close());

  test("JSONL: every event of the filter once, oldest first, as stored", async () => {
    const res = await h.get("/export/events.jsonl?provider=openai");
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    expect(res.headers.get("content-disposition")).toMatch(/attachment; filename="oisp-events-.*\.jsonl"/);
    const lines = (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l) as FixtureEvent);
    const expected = events.filter((e) => (e.data as { provider?: { name: string } }).provider?.name === "openai");
    expect(lines.map((e) => e.event_id)).toEqual(newestFirst(expected).reverse());
    expect(lines[0]).toEqual(expected.find((e) => e.event_id === lines[0]!.event_id)!);
  });

  test("CSV: header + one row per event, quoting and formula guard", async () => {
    const res = await h.get("/export/events.csv?range=all");
    expect(res.headers.get("content-type")).toContain("text/csv");
    const rows = parseCsv(await res.text());
    expect(rows[0]).toEqual([...CSV_COLUMNS]);
    expect(rows.length - 1).toBe(events.length);
    const procCol = CSV_COLUMNS.indexOf("process_name");
    const odd = rows.find((r) => r[procCol]!.includes("cmd"))!;
    expect(odd[procCol]).toBe(`'=cmd|"x",\nname`);
    expect(rows.every((r) => r.length === CSV_COLUMNS.length)).toBe(true);
  });

  test("over a real socket the first bytes leave before the export is read to the end", async () => {
    // Load-independent: the producer is gated on the client. After the first chunk it waits (synchronously,
    // like a slow query) until curl, a separate process, has written bytes, so how far a busy machine lets
    // it run ahead cannot matter. And between any two chunks the server's event loop must turn (counted by
    // a self-renewing setImmediate): Bun pulls a synchronous stream in one go until the socket pushes back,
    // holding every other request of the dashboard for the whole export.
    const out = path.join(h.dir, "export-stream.jsonl");
    let gateOpened: boolean | undefined;
    let turns = 0;
    const turnsAtChunk: number[] = [];
    const queries: WebQueries = {
      ...h.queries,
      *exportChunks(filter, _chunk) {
        for (const rows of h.queries.exportChunks(filter, 50)) {
          turnsAtChunk.push(turns);
          if (turnsAtChunk.length === 2) {
            const deadline = Date.now() + 15_000; // bounds only the failing case
            const hasBytes = () => fs.existsSync(out) && fs.statSync(out).size > 0;
            while (!hasBytes() && Date.now() < deadline) Bun.sleepSync(5);
            gateOpened = hasBytes();
          }
          yield rows;
        }
      },
    };
    const app = createWebApp({ queries, dataDir: h.dir, csrfToken: CSRF, allowedHosts: allowedHostHeaders("127.0.0.1", 0), hub: h.hub, now: () => NOW });
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => app.fetch(req) });
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    try {
      const url = `http://127.0.0.1:${server.port}/export/events.jsonl`;
      const curl = Bun.spawn(["curl", "-sSN", "--fail", "-H", "Host: 127.0.0.1:0", "-o", out, url], { stderr: "pipe" });
      expect(await curl.exited).toBe(0);
      expect(gateOpened).toBe(true);
      expect(fs.readFileSync(out, "utf8").trimEnd().split("\n").length).toBe(events.length);
      expect(turnsAtChunk.length).toBe(Math.ceil(events.length / 50));
      const stalled = turnsAtChunk.filter((t, i) => i > 0 && t === turnsAtChunk[i - 1]).length;
      expect(stalled).toBe(0);
    } finally {
      counting = false;
      await server.stop(true);
    }
  });

  test("export honours the time filter and the text filter", async () => {
    const res = await h.get("/export/events.jsonl?range=1h");
    const n = (await res.text()).trimEnd().split("\n").filter(Boolean).length;
    expect(n).toBe(events.filter((e) => Date.parse(e.ts) >= NOW - HOUR).length);
    const empty = await (await h.get("/export/events.jsonl?q=zzzz-not-there")).text();
    expect(empty).toBe("");
  });
});


describe("settings form", () => {
  let h: WebHarness;
  beforeAll(() => {
    h = webHarness({ now: () => NOW });
  });
  afterAll(() => h.close());
  const file = () => path.join(h.dir, "settings.json");

  test("a bad value is refused with the error next to its field, and nothing is written", async () => {
    const res = await h.post("/control/settings", { _csrf: CSRF, ProxyPort: "99999", Redaction: "full" }, { "HX-Request": "true" });
    expect(res.status).toBe(422);
    const html = await res.text();
    expect(html.startsWith('<section class="panel" id="settings">')).toBe(true);
    expect(html).toMatch(/<div class="field invalid" data-field="ProxyPort">[\s\S]*?<span class="field-error" role="alert">[^<]+<\/span>/);
    expect(html).toContain('value="99999"'); // the user's input is kept for fixing
    expect(fs.existsSync(file())).toBe(false);
  });

  test("a plain form POST (no htmx, token in the body) saves and re-renders the control page", async () => {
    const res = await h.post("/control/settings", { _csrf: CSRF, ProxyPort: "8099", Redaction: "full", ProcessFilter: "python3\nnode" });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("Saved.");
    const saved = JSON.parse(fs.readFileSync(file(), "utf8"));
    expect(saved).toMatchObject({ ProxyPort: 8099, Redaction: "full", ProcessFilter: ["python3", "node"] });
    const page = await (await h.get("/control")).text();
    expect(page).toContain('name="ProxyPort" type="text" inputmode="numeric" value="8099"');
  });

  test("an oversized body is refused before anything parses it", async () => {
    const res = await h.post("/control/settings", { _csrf: CSRF, OutputPath: "x".repeat(70 * 1024) });
    expect(res.status).toBe(413);
  });
});
