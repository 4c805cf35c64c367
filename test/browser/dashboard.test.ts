// The dashboard in a real headless Chromium (Debian `chromium`, driven by playwright-core) against the
// real web server (src/web/server.ts) over a real temp store. Events go in the way the sensor puts them
// in: StoreOutput + LiveOutput. Screenshots land in test-output/screenshots/ for a human to look at.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { OispEvent } from "../../src/events/index.ts";
import { CommittedLiveOutput, LiveOutput, StoreOutput } from "../../src/sensor/outputs.ts";
import { openStore } from "../../src/store/index.ts";
import { caControlFor } from "../../src/web/ca-control.ts";
import { startWebServer, type RunningWebServer } from "../../src/web/server.ts";
import { aiExchange, PROCESSES, sampleTraffic, systemEvent, type FixtureEvent } from "../support/event-fixtures.ts";

setDefaultTimeout(30_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = path.resolve(import.meta.dir, "../../test-output/screenshots");

describe("dashboard in headless Chromium", () => {
  let dir: string;
  let store: ReturnType<typeof openStore>;
  let storeOutput: StoreOutput;
  const live = new LiveOutput();
  let committedLive: CommittedLiveOutput;
  let server: RunningWebServer;
  let context: BrowserContext;
  let page: Page;
  const events: FixtureEvent[] = [];
  let toolCall: FixtureEvent[];
  const consoleErrors: string[] = [];

  /** What the sensor does with a batch: store it (committed on the next flush), then tell live listeners. */
  const emit = (batch: FixtureEvent[]) => {
    storeOutput.write(batch as unknown as OispEvent[]);
    committedLive.write(batch as unknown as OispEvent[]);
  };

  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const rowIds = () => page.$$eval("#rows tr[data-href]", (rows) => rows.map((r) => decodeURIComponent(r.getAttribute("data-href")!.slice(7))));

  beforeAll(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH). The browser test cannot run without it.`);
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-browser-"));
    const dbPath = path.join(dir, "oisp.db");
    store = openStore(dbPath);
    storeOutput = new StoreOutput(store, () => {});
    committedLive = new CommittedLiveOutput(storeOutput, live);
    const now = Date.now();
    events.push(...sampleTraffic(now - 5 * 60_000, 60, 72));
    toolCall = aiExchange({
      tsMs: now - 60_000,
      provider: "anthropic",
      process: PROCESSES.node,
      prompt: "Why does parse() drop the last token?",
      answer: "The loop stops one short: use <= instead of <.",
      thinking: "Check the loop bound in parse().",
      toolCalls: [{ name: "read_file", arguments: '{"path":"src/parse.ts"}' }],
    });
    events.push(...toolCall);
    // Two calls to an alias answered by a dated snapshot: one inventory row.
    // What node ran and wrote (eBPF's process.exec / file.write): listed under their process.
    events.push(
      systemEvent("process.exec", now - 75_000, { pid: 6060, ppid: PROCESSES.node.pid, name: "sh", exe: "/bin/sh", parentName: "node" }, { exe: "/usr/bin/npm", args: ["npm", "test"] }, "full"),
      systemEvent("file.write", now - 70_000, PROCESSES.node, { path: "/src/parse.ts", bytes_written: 812 }, "full"),
    );
    for (const t of [now - 90_000, now - 80_000]) events.push(...aiExchange({ tsMs: t, model: "gpt-x", responseModel: "gpt-x-0718", inputTokens: 1000, outputTokens: 10 }));
    store.insertEvents(events);
    server = await startWebServer({
      host: "127.0.0.1",
      port: 0,
      dbPath,
      live,
      dataDir: dir,
      status: () => ({ proxy: "http://127.0.0.1:8080", "pipeline.events": events.length }),
      ca: caControlFor(dir),
    });
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-chromium-"));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
      acceptDownloads: true,
      viewport: { width: 1400, height: 900 },
      timeout: 20_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(8000);
    page.on("console", (m) => {
      if (m.type() === "error") consoleErrors.push(`${page.url()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => consoleErrors.push(e.message));
  });

  afterAll(async () => {
    await context?.close();
    await server?.close();
    store?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("timeline shows the newest events first and goes live", async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector("#live-status.live");
    const ids = await rowIds();
    expect(ids.length).toBe(100);
    expect(ids[0]).toBe(toolCall[2]!.event_id); // the tool call is the newest event
    expect(await page.locator("#rows tr").first().innerText()).toContain("agent.tool_call");
    // "What happened": the tool's name, the provider's display name and model, the command line, the path.
    const what = async (id: string) => (await page.locator(`#rows tr[data-href="/event/${id}"] td.what`).innerText()).trim();
    expect(await what(toolCall[2]!.event_id)).toBe("read_file");
    expect(await what(toolCall[0]!.event_id)).toBe("Anthropic claude-sonnet-4-5");
    const exec = events.find((e) => e.event_type === "process.exec")!;
    expect(await what(exec.event_id)).toBe("npm test");
    expect(await page.locator(`#rows tr[data-href="/event/${exec.event_id}"]`).innerText()).toContain("node→sh");
    expect(await what(events.find((e) => e.event_type === "file.write")!.event_id)).toBe("/src/parse.ts (812 B)");
    await shot("timeline");
  });

  test("a request can be followed from the timeline to its detail, and on to the related events", async () => {
    const response = toolCall[1]!;
    await page.click(`#rows tr[data-href="/event/${response.event_id}"] td.time a`);
    await page.waitForURL(`**/event/${response.event_id}`);
    const body = await page.locator("main").innerText();
    expect(body).toContain("Why does parse() drop the last token?");
    expect(body).toContain("The loop stops one short: use <= instead of <.");
    expect(body).toContain("read_file");
    expect(body).toContain("Check the loop bound in parse().");
    await shot("event-detail");
    // Related: the tool call event is linked.
    await page.click(`a[href="/event/${toolCall[2]!.event_id}"]`);
    await page.waitForURL(`**/event/${toolCall[2]!.event_id}`);
    expect(await page.locator("main").innerText()).toContain("read_file");
    await shot("event-detail-tool-call");
  });

  test("a new event appears live, without a reload", async () => {
    await page.goto(`${server.url}/`);
    await page.waitForSelector("#live-status.live");
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    const fresh = aiExchange({ tsMs: Date.now(), provider: "openai", model: "gpt-live-test", process: { pid: 9090, name: "live-proc" } });
    emit(fresh);
    await page.waitForSelector(`#rows tr[data-href="/event/${fresh[1]!.event_id}"]`, { timeout: 8000 });
    expect(await page.evaluate(() => (window as unknown as { marker?: number }).marker)).toBe(42); // same document
    const first = await rowIds();
    expect(first.slice(0, 2).sort()).toEqual(fresh.map((e) => e.event_id).sort());
    expect(await page.locator("#rows tr.fresh").count()).toBe(2);
    events.push(...fresh);
    await shot("timeline-live");
  });

  test("a filter narrows the timeline in place and lands in the address", async () => {
    await page.selectOption('#filters select[name="provider"]', "anthropic");
    await page.waitForURL(/provider=anthropic/);
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll("#rows tr[data-href]")];
      return rows.length > 0 && rows.every((r) => r.children[2]?.textContent?.trim().startsWith("Anthropic "));
    });
    const ids = await rowIds();
    const expected = events.filter((e) => (e.data as { provider?: { name: string } }).provider?.name === "anthropic").length;
    expect(ids.length).toBe(Math.min(100, expected));
    await shot("timeline-filtered");
  });

  test("the export link downloads the current filter as JSONL", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.click('a[href^="/export/events.jsonl"]')]);
    expect(download.suggestedFilename()).toMatch(/^oisp-events-.*\.jsonl$/);
    const file = await download.path();
    const lines = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as FixtureEvent);
    const expected = events.filter((e) => (e.data as { provider?: { name: string } }).provider?.name === "anthropic");
    expect(lines.map((e) => e.event_id).sort()).toEqual(expected.map((e) => e.event_id).sort());
  });

  test("inventory, processes and usage pages render their data", async () => {
    await page.goto(`${server.url}/inventory`);
    const inv = await page.locator("main").innerText();
    for (const s of ["OpenAI", "Anthropic", "python3", "node", "cursor", "live-proc", "gpt-live-test"]) expect(inv).toContain(s);
    await shot("inventory");
    // One call, one row: requests, tokens and cost of the alias's calls on its row, the snapshot beside it.
    const modelRows = await page.$$eval("main table", (tables) => {
      const models = tables.find((t) => t.querySelector("th")?.textContent?.startsWith("Model"));
      return [...(models?.querySelectorAll("tbody tr") ?? [])].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent?.trim() ?? ""));
    });
    const gptx = modelRows.filter((r) => r[0]!.includes("gpt-x"));
    expect(gptx).toHaveLength(1);
    expect(gptx[0]!.slice(0, 6)).toEqual(["gpt-x answered by gpt-x-0718", "OpenAI", "2", "", "2,000", "20"]);
    // The timeline's filter bar: choosing a provider reloads the lists (htmx) narrowed to it.
    // Its provider choices read as display names; the value chosen is the id.
    const choices = await page.$$eval('main select[name="provider"] option', (os) => os.map((o) => [(o as HTMLOptionElement).value, o.textContent?.trim()]));
    expect(choices).toContainEqual(["openai", "OpenAI"]);
    expect(choices).toContainEqual(["anthropic", "Anthropic"]);
    await page.selectOption('main select[name="provider"]', "anthropic");
    await page.waitForURL(/provider=anthropic/);
    await page.waitForFunction(() => document.querySelector("main")?.textContent?.includes("Providers (1)"));
    expect(await page.locator("main table").first().innerText()).not.toContain("OpenAI");

    await page.goto(`${server.url}/processes`);
    const proc = await page.locator("main").innerText();
    for (const s of ["python3", "node", "cursor", "4242", "5151"]) expect(proc).toContain(s);
    // Commands run and files written, each on a line under the process that did it.
    const treeRows = await page.$$eval("main table.tree-table tbody tr", (trs) => trs.map((tr) => (tr as HTMLElement).innerText.replace(/\s+/g, " ").trim()));
    const nodeAt = treeRows.findIndex((r) => /^└?\s?node 5151/.test(r));
    expect(nodeAt).toBeGreaterThanOrEqual(0);
    expect(treeRows[nodeAt + 1]).toMatch(/^↳ file\.write \/src\/parse\.ts/);
    const shAt = treeRows.findIndex((r) => /^└?\s?sh 6060/.test(r));
    expect(shAt).toBeGreaterThan(nodeAt);
    expect(treeRows[shAt + 1]).toMatch(/^↳ process\.exec npm test/);
    await shot("processes");

    await page.goto(`${server.url}/usage`);
    expect(await page.locator("svg.chart rect").count()).toBeGreaterThan(0);
    await page.selectOption('select[name="metric"]', "tokens");
    await page.waitForURL(/metric=tokens/);
    expect(await page.locator("svg.chart rect").count()).toBeGreaterThan(0);
    await shot("usage");
  });

  test("settings: a bad value is refused and the error shows in place", async () => {
    await page.goto(`${server.url}/control`);
    expect(await page.locator("#capture").innerText()).toContain("http://127.0.0.1:8080");
    await page.fill('#settings [name="ProxyPort"]', "99999");
    await page.click('#settings button[type="submit"]');
    const error = page.locator('[data-field="ProxyPort"] .field-error');
    await error.waitFor();
    expect(await error.innerText()).toMatch(/65535|less than|too big/i);
    expect(page.url()).toBe(`${server.url}/control`);
    expect(await page.inputValue('#settings [name="ProxyPort"]')).toBe("99999");
    expect(fs.existsSync(path.join(dir, "settings.json"))).toBe(false);
    await shot("control-settings-error");

    await page.fill('#settings [name="ProxyPort"]', "8089");
    await page.click('#settings button[type="submit"]');
    await page.locator("#settings .notice.ok").waitFor();
    expect(JSON.parse(fs.readFileSync(path.join(dir, "settings.json"), "utf8")).ProxyPort).toBe(8089);
    await shot("control");
  });

  test("no script errors (CSP violations included) on any page", () => {
    // Chromium logs every 4xx response; the 422 of the refused settings is the expected one.
    expect(consoleErrors.filter((e) => !e.includes("status of 422 (Unprocessable Entity)"))).toEqual([]);
  });
});
