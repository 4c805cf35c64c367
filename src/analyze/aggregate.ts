// The aggregates behind `oisp analyze`: fed one event at a time, keeps only counters, bounded key
// tables and reservoirs, so memory does not grow with the number of events. Pure: no I/O, no clock.
import { eventInputTokens } from "../events/input-tokens.ts";
import { endpointOf, isObj, modelIdOf, nonEmptyStr, num, obj, requestIdOf, type JsonObject } from "../events/read.ts";
import { eventProviderLabel } from "../spec/provider-label.ts";
import { Reservoir, type Percentiles } from "./reservoir.ts";

export interface AnalyzeLimits {
  /** Distinct keys per table (models, apps, accounts, errors, tools...); the rest are merged into "(other)". */
  maxKeys: number;
  /** Requests waiting for their response (or responses for their request) to attribute usage to an account. */
  maxPendingJoins: number;
  /** Malformed lines listed by number (all are counted). */
  maxMalformedListed: number;
  /** Values kept per percentile reservoir. */
  reservoirSize: number;
}

export const DEFAULT_LIMITS: AnalyzeLimits = { maxKeys: 10_000, maxPendingJoins: 100_000, maxMalformedListed: 20, reservoirSize: 8192 };

export const OTHER = "(other)";
export const UNKNOWN = "(unknown)";
/** Key of the all-providers reservoir (cannot clash with a provider name). */
const ALL = "\u0000all";

export interface UsageTotals {
  input_tokens: number;
  output_tokens: number;
  cached_tokens: number;
  reasoning_tokens: number;
  /** Sum over priced responses only. */
  cost_usd: number;
  priced_responses: number;
  /** Responses with token usage but no cost: their model has no known price. */
  unpriced_responses: number;
}

export interface ProviderRow extends UsageTotals {
  provider: string;
  requests: number;
  responses: number;
  errors: number;
  models: number;
  endpoints: string[];
  first_seen?: string;
  last_seen?: string;
}

export interface ModelRow extends UsageTotals {
  provider: string;
  /** The model the calls asked for: a response counts under its request's model (one call, one row). */
  model: string;
  /** Other models named by the responses (a dated snapshot answering an alias), sorted. */
  answered_by: string[];
  requests: number;
  responses: number;
  errors: number;
}

export interface AppRow extends UsageTotals {
  app: string;
  requests: number;
  responses: number;
  errors: number;
}

export interface AccountRow extends UsageTotals {
  provider: string;
  /** sha256 fingerprint of the credential, as the sensor recorded it. */
  key_hash: string;
  key_prefix: string;
  auth_type: string;
  requests: number;
  responses: number;
}

export interface ErrorRow {
  provider: string;
  model: string;
  status_code: number | null;
  error_type: string;
  rate_limit: boolean;
  count: number;
}

export interface ToolRow {
  name: string;
  calls: number;
}

export interface MalformedLine {
  line: number;
  reason: string;
}

export interface LatencyRow extends Percentiles {
  provider: string;
}

export interface Report {
  source?: { path: string; kind: "jsonl" | "db"; bytes?: number; lines?: number; since?: string; until?: string };
  summary: UsageTotals & {
    events: number;
    by_type: Record<string, number>;
    requests: number;
    responses: number;
    errors: number;
    rate_limited: number;
    tool_calls: number;
    first_ts?: string;
    last_ts?: string;
    /** Events outside --since/--until. */
    out_of_range: number;
  };
  malformed: { count: number; first: MalformedLine[] };
  providers: ProviderRow[];
  models: ModelRow[];
  /** Models whose responses had tokens but no price: their cost is unknown, not 0. */
  unknown_price_models: Array<{ provider: string; model: string; responses: number }>;
  apps: AppRow[];
  accounts: AccountRow[];
  errors: ErrorRow[];
  latency_ms: { overall?: Percentiles; by_provider: LatencyRow[] };
  ttft_ms: { overall?: Percentiles; by_provider: LatencyRow[] };
  tools: ToolRow[];
  /** How the bounds affected this report (all zero: nothing was merged or left out). */
  bounds: { percentiles: string; keys_merged_into_other: number; responses_without_account: number };
}

type Obj = JsonObject;

const MAX_MERGED_TRACKED = 100_000;

/** A key → row table holding at most `max` keys; later keys share one "(other)" row. */
class BoundedTable<R> {
  readonly rows = new Map<string, R>();
  merged = 0;
  private readonly seenMerged = new Set<string>();
  constructor(
    private readonly max: number,
    private readonly make: (key: string) => R,
  ) {}
  get(key: string): R {
    let row = this.rows.get(key);
    if (row) return row;
    if (this.rows.size >= this.max) {
      // Count distinct merged keys, remembering at most MAX_MERGED_TRACKED of them (then the count is a floor).
      if (this.seenMerged.size < MAX_MERGED_TRACKED && !this.seenMerged.has(key)) {
        this.seenMerged.add(key);
        this.merged++;
      }
      key = OTHER;
      row = this.rows.get(key);
      if (row) return row;
    }
    row = this.make(key);
    this.rows.set(key, row);
    return row;
  }
}

/** A request waiting for its response: its account (when it had a credential) and the model it asked for. */
interface PendingRequest {
  key?: string;
  model: string;
}

/** A response that came before its request, and the model row it was counted under. */
interface PendingResponse {
  usage: ResponseUsage;
  modelKey: string;
}

/** Distinct answering models listed per model row. */
const MAX_ANSWERED_BY = 8;

interface ResponseUsage {
  input: number;
  output: number;
  cached: number;
  reasoning: number;
  cost?: number;
  hasTokens: boolean;
}

const zeroUsage = (): UsageTotals => ({
  input_tokens: 0,
  output_tokens: 0,
  cached_tokens: 0,
  reasoning_tokens: 0,
  cost_usd: 0,
  priced_responses: 0,
  unpriced_responses: 0,
});

export class Analyzer {
  private readonly limits: AnalyzeLimits;
  private readonly summary: Report["summary"] = {
    events: 0,
    by_type: {},
    requests: 0,
    responses: 0,
    errors: 0,
    rate_limited: 0,
    tool_calls: 0,
    out_of_range: 0,
    ...zeroUsage(),
  };
  private firstMs = Infinity;
  private lastMs = -Infinity;
  private malformedCount = 0;
  private readonly malformedFirst: MalformedLine[] = [];
  private readonly providers: BoundedTable<ProviderRow & { modelSet: Set<string>; endpointSet: Set<string>; firstMs: number; lastMs: number }>;
  private readonly models: BoundedTable<Omit<ModelRow, "answered_by"> & { answeredBy: Set<string> }>;
  private readonly apps: BoundedTable<AppRow>;
  private readonly accounts: BoundedTable<AccountRow>;
  private readonly errors: BoundedTable<ErrorRow>;
  private readonly tools: BoundedTable<ToolRow>;
  private readonly latency = new Map<string, Reservoir>();
  private readonly ttft = new Map<string, Reservoir>();
  /** request_id → the request's account and model, or a response that came before its request (newest-first sources). */
  private readonly joins = new Map<string, PendingRequest | PendingResponse>();
  private unattributed = 0;

  constructor(
    private readonly range: { sinceMs?: number; untilMs?: number } = {},
    limits: Partial<AnalyzeLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    const max = this.limits.maxKeys;
    this.providers = new BoundedTable(Math.min(max, 1000), (provider) => ({
      provider,
      requests: 0,
      responses: 0,
      errors: 0,
      models: 0,
      endpoints: [],
      ...zeroUsage(),
      modelSet: new Set(),
      endpointSet: new Set(),
      firstMs: Infinity,
      lastMs: -Infinity,
    }));
    this.models = new BoundedTable(max, (key) => ({
      ...splitKey(key, "provider", "model"),
      requests: 0,
      responses: 0,
      errors: 0,
      ...zeroUsage(),
      answeredBy: new Set<string>(),
    }));
    this.apps = new BoundedTable(max, (app) => ({ app, requests: 0, responses: 0, errors: 0, ...zeroUsage() }));
    this.accounts = new BoundedTable(max, (key) => {
      const [provider = OTHER, key_hash = OTHER, key_prefix = "", auth_type = ""] = key === OTHER ? [OTHER, OTHER] : key.split("\u0000");
      return { provider, key_hash, key_prefix, auth_type, requests: 0, responses: 0, ...zeroUsage() };
    });
    this.errors = new BoundedTable(max, (key) => {
      const [provider = OTHER, model = OTHER, status = "", error_type = OTHER] = key === OTHER ? [] : key.split("\u0000");
      return { provider, model, status_code: status === "" ? null : Number(status), error_type, rate_limit: false, count: 0 };
    });
    this.tools = new BoundedTable(max, (name) => ({ name, calls: 0 }));
  }

  /** A line (or row) that is not an event. Never fatal: counted, and the first few listed. */
  malformed(line: number, reason: string): void {
    this.malformedCount++;
    if (this.malformedFirst.length < this.limits.maxMalformedListed) this.malformedFirst.push({ line, reason });
  }

  /** Adds one parsed JSON value; returns false (and records why) when it is not an OISP event. */
  add(value: unknown, line = 0): boolean {
    if (!isObj(value)) return this.malformed(line, "not a JSON object"), false;
    const type = value.event_type;
    const ts = value.ts;
    if (typeof type !== "string" || !type) return this.malformed(line, "no event_type"), false;
    const tsMs = typeof ts === "string" ? Date.parse(ts) : NaN;
    if (!Number.isFinite(tsMs)) return this.malformed(line, "no valid ts"), false;
    if ((this.range.sinceMs !== undefined && tsMs < this.range.sinceMs) || (this.range.untilMs !== undefined && tsMs >= this.range.untilMs)) {
      this.summary.out_of_range++;
      return true;
    }
    const s = this.summary;
    s.events++;
    s.by_type[type] = (s.by_type[type] ?? 0) + 1;
    if (tsMs < this.firstMs) this.firstMs = tsMs;
    if (tsMs > this.lastMs) this.lastMs = tsMs;
    const data = isObj(value.data) ? value.data : {};
    if (type === "ai.request") this.request(value, data, tsMs);
    else if (type === "ai.response") this.response(value, data, tsMs);
    return true;
  }

  private request(event: Obj, data: Obj, tsMs: number): void {
    const provider = eventProviderLabel(event) ?? UNKNOWN;
    const model = modelOf(data);
    const app = appOf(event);
    this.summary.requests++;
    const p = this.provider(provider, tsMs);
    p.requests++;
    if (model !== UNKNOWN && p.modelSet.size < 1000) p.modelSet.add(model);
    const host = hostOf(endpointOf(data));
    if (host && p.endpointSet.size < 50) p.endpointSet.add(host);
    this.apps.get(app).requests++;

    const auth = obj(data.auth);
    const keyHash = nonEmptyStr(auth?.key_hash);
    const accountKey = keyHash ? [provider, keyHash, nonEmptyStr(auth?.key_prefix) ?? "", nonEmptyStr(auth?.type) ?? ""].join("\u0000") : undefined;
    if (accountKey) this.accounts.get(accountKey).requests++;

    const requestId = requestIdOf(data);
    const waiting = requestId ? this.joins.get(requestId) : undefined;
    if (requestId && waiting && "usage" in waiting) {
      // Its response came first and was counted under the response's model: the request joins that row.
      this.joins.delete(requestId);
      this.models.get(waiting.modelKey).requests++;
      if (accountKey) {
        const acc = this.accounts.get(accountKey);
        acc.responses++;
        addUsage(acc, waiting.usage);
      } else this.unattributed++;
      return;
    }
    this.models.get(`${provider}\u0000${model}`).requests++;
    if (requestId) this.remember(requestId, { ...(accountKey && { key: accountKey }), model });
  }

  private response(event: Obj, data: Obj, tsMs: number): void {
    const provider = eventProviderLabel(event) ?? UNKNOWN;
    const model = modelOf(data);
    const app = appOf(event);
    const s = this.summary;
    s.responses++;
    const u = usageOf(obj(data.usage), obj(event.attrs));
    const statusCode = typeof data.status_code === "number" && Number.isInteger(data.status_code) ? data.status_code : undefined;
    const failed = data.success === false || (statusCode !== undefined && statusCode >= 400);
    const error = obj(data.error);
    const errorType = nonEmptyStr(error?.type) ?? nonEmptyStr(error?.code) ?? (statusCode !== undefined ? `http_${statusCode}` : "error");
    const rateLimited = statusCode === 429 || /rate.?limit/i.test(`${nonEmptyStr(error?.type) ?? ""} ${nonEmptyStr(error?.code) ?? ""}`);

    // One call, one model row: the response counts under the model its request asked for (an alias such as
    // gpt-4o-mini answered by gpt-4o-mini-2024-07-18), the answering model listed beside it.
    const requestId = requestIdOf(data);
    const waiting = requestId ? this.joins.get(requestId) : undefined;
    const request = waiting && !("usage" in waiting) ? waiting : undefined;
    const callModel = request?.model ?? model;
    const modelKey = `${provider}\u0000${callModel}`;
    const p = this.provider(provider, tsMs);
    const m = this.models.get(modelKey);
    if (model !== UNKNOWN && model !== callModel && m.answeredBy.size < MAX_ANSWERED_BY) m.answeredBy.add(model);
    const a = this.apps.get(app);
    for (const row of [s, p, m, a]) addUsage(row, u);
    p.responses++;
    m.responses++;
    a.responses++;
    if (model !== UNKNOWN && p.modelSet.size < 1000) p.modelSet.add(model);
    if (failed) {
      s.errors++;
      p.errors++;
      m.errors++;
      a.errors++;
      const e = this.errors.get([provider, callModel, statusCode ?? "", errorType].join("\u0000"));
      e.count++;
      if (rateLimited) e.rate_limit = true;
    }
    if (rateLimited) s.rate_limited++;

    const latency = num(data.latency_ms);
    if (latency !== undefined) this.sample(this.latency, provider, latency);
    const ttft = num(data.time_to_first_token_ms);
    if (ttft !== undefined) this.sample(this.ttft, provider, ttft);

    if (Array.isArray(data.tool_calls)) {
      for (const tc of data.tool_calls) {
        s.tool_calls++;
        this.tools.get(nonEmptyStr(obj(tc)?.name) ?? UNKNOWN).calls++;
      }
    }

    // Usage belongs to the account that made the request: join on request_id within a bounded window.
    if (requestId && request) {
      this.joins.delete(requestId);
      if (request.key) {
        const acc = this.accounts.get(request.key);
        acc.responses++;
        addUsage(acc, u);
      } else this.unattributed++;
    } else if (requestId) this.remember(requestId, { usage: u, modelKey });
    else this.unattributed++;
  }

  private remember(requestId: string, v: PendingRequest | PendingResponse): void {
    if (this.joins.size >= this.limits.maxPendingJoins) {
      const oldest = this.joins.keys().next().value as string;
      if ("usage" in this.joins.get(oldest)!) this.unattributed++;
      this.joins.delete(oldest);
    }
    this.joins.set(requestId, v);
  }

  private provider(name: string, tsMs: number) {
    const p = this.providers.get(name);
    if (tsMs < p.firstMs) p.firstMs = tsMs;
    if (tsMs > p.lastMs) p.lastMs = tsMs;
    return p;
  }

  /** Adds a value to the overall reservoir (key ALL) and to its provider's (at most 64 providers, then "(other)"). */
  private sample(map: Map<string, Reservoir>, provider: string, v: number): void {
    const key = map.has(provider) || map.size < 65 ? provider : OTHER;
    for (const k of [ALL, key]) {
      let r = map.get(k);
      if (!r) map.set(k, (r = new Reservoir(this.limits.reservoirSize, k === ALL ? 0x85ebca6b : 0x9e3779b9)));
      r.add(v);
    }
  }

  report(source?: Report["source"]): Report {
    // Responses still waiting for a request that never came have no account.
    let unattributed = this.unattributed;
    for (const v of this.joins.values()) if ("usage" in v) unattributed++;
    const s = this.summary;
    const providers = [...this.providers.rows.values()].map(({ modelSet, endpointSet, firstMs, lastMs, ...row }) => ({
      ...row,
      cost_usd: usd(row.cost_usd),
      models: modelSet.size,
      endpoints: [...endpointSet].sort(),
      ...(Number.isFinite(firstMs) && { first_seen: iso(firstMs) }),
      ...(Number.isFinite(lastMs) && { last_seen: iso(lastMs) }),
    }));
    const models: ModelRow[] = [...this.models.rows.values()].map(({ answeredBy, ...r }) => ({
      ...r,
      answered_by: [...answeredBy].sort(),
      cost_usd: usd(r.cost_usd),
    }));
    return {
      ...(source && { source }),
      summary: {
        ...s,
        by_type: Object.fromEntries(Object.entries(s.by_type).sort(([a], [b]) => a.localeCompare(b))),
        cost_usd: usd(s.cost_usd),
        ...(Number.isFinite(this.firstMs) && { first_ts: iso(this.firstMs), last_ts: iso(this.lastMs) }),
      },
      malformed: { count: this.malformedCount, first: [...this.malformedFirst] },
      providers: sortRows(providers, (r) => [r.requests + r.responses, r.provider]),
      models: sortRows(models, (r) => [r.responses + r.requests, `${r.provider}/${r.model}`]),
      unknown_price_models: sortRows(
        models.filter((m) => m.unpriced_responses > 0).map((m) => ({ provider: m.provider, model: m.model, responses: m.unpriced_responses })),
        (r) => [r.responses, `${r.provider}/${r.model}`],
      ),
      apps: sortRows([...this.apps.rows.values()].map((r) => ({ ...r, cost_usd: usd(r.cost_usd) })), (r) => [r.requests + r.responses, r.app]),
      accounts: sortRows([...this.accounts.rows.values()].map((r) => ({ ...r, cost_usd: usd(r.cost_usd) })), (r) => [r.requests, `${r.provider}/${r.key_hash}`]),
      errors: sortRows([...this.errors.rows.values()], (r) => [r.count, `${r.provider}/${r.model}/${r.status_code}/${r.error_type}`]),
      latency_ms: this.latencyReport(this.latency),
      ttft_ms: this.latencyReport(this.ttft),
      tools: sortRows([...this.tools.rows.values()], (r) => [r.calls, r.name]),
      bounds: {
        percentiles: `reservoir sample of ${this.limits.reservoirSize} values (exact below that)`,
        keys_merged_into_other: this.providers.merged + this.models.merged + this.apps.merged + this.accounts.merged + this.errors.merged + this.tools.merged,
        responses_without_account: unattributed,
      },
    };
  }

  private latencyReport(map: Map<string, Reservoir>): Report["latency_ms"] {
    const by_provider: LatencyRow[] = [];
    for (const [provider, r] of map) {
      if (provider === ALL) continue;
      const p = r.percentiles();
      if (p) by_provider.push({ provider, ...p });
    }
    const overall = map.get(ALL)?.percentiles();
    return { ...(overall && { overall }), by_provider: sortRows(by_provider, (r) => [r.count, r.provider]) };
  }
}

function addUsage(row: UsageTotals, u: ResponseUsage): void {
  row.input_tokens += u.input;
  row.output_tokens += u.output;
  row.cached_tokens += u.cached;
  row.reasoning_tokens += u.reasoning;
  if (u.cost !== undefined) {
    row.cost_usd += u.cost;
    row.priced_responses++;
  } else if (u.hasTokens) row.unpriced_responses++;
}

/** Input tokens: all prompt tokens, cache reads and writes included (one rule for every view: src/events/input-tokens.ts). */
function usageOf(u: Obj | undefined, attrs: Obj | undefined): ResponseUsage {
  const cached = count(u?.cached_tokens);
  const input = eventInputTokens(u, attrs) ?? 0;
  const output = count(u?.completion_tokens);
  const cost = num(u?.total_cost_usd);
  return {
    input,
    output,
    cached,
    reasoning: count(u?.reasoning_tokens),
    ...(cost !== undefined && cost >= 0 && { cost }),
    hasTokens: input + output > 0,
  };
}

/** Descending by the number, then ascending by the name: a stable order for golden outputs. */
function sortRows<T>(rows: T[], key: (r: T) => [number, string]): T[] {
  return rows.sort((a, b) => {
    const [na, sa] = key(a);
    const [nb, sb] = key(b);
    return nb - na || (sa < sb ? -1 : sa > sb ? 1 : 0);
  });
}

function splitKey<A extends string, B extends string>(key: string, a: A, b: B): Record<A | B, string> {
  const i = key.indexOf("\u0000");
  return (i < 0 ? { [a]: OTHER, [b]: OTHER } : { [a]: key.slice(0, i), [b]: key.slice(i + 1) }) as Record<A | B, string>;
}

function modelOf(data: Obj): string {
  return modelIdOf(data) ?? UNKNOWN;
}

/** The app is the process name the sensor attributed the call to (else the app name, else unknown). */
function appOf(event: Obj): string {
  const proc = obj(event.process);
  const exe = nonEmptyStr(proc?.exe);
  return nonEmptyStr(proc?.name) ?? nonEmptyStr(obj(event.app)?.name) ?? (exe ? exe.split(/[\\/]/).pop() : undefined) ?? UNKNOWN;
}

function hostOf(endpoint: string | undefined): string | undefined {
  if (!endpoint) return undefined;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(endpoint);
  return m?.[1]?.toLowerCase();
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

function usd(n: number): number {
  return Math.round(n * 1e10) / 1e10;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
