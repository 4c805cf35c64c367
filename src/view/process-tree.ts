// Builds the process tree shown on /processes and in the terminal view from (pid, process, provider) rows.
// A process is nested under its parent when the parent was seen too; a parent that made no AI call itself
// (a shell, an IDE) still appears, marked as not seen, so siblings group under it. Cycles (pid reuse)
// cannot loop. Commands run and files written (process.exec / file.write) are listed under their process.
import type { ProcessProviderRow, TimelineRow } from "../store/queries.ts";

/** Commands run and files written, listed under the process that did them (newest first). */
const ACTIVITY_PER_PROCESS = 5;

export interface ProviderUse {
  provider: string;
  requests: number;
  events: number;
  cost_usd: number;
}

export interface ProcessNode {
  pid: number;
  ppid: number | null;
  name: string;
  exe: string | null;
  /** False for a parent known only through its children's ppid. */
  seen: boolean;
  lastMs: number;
  requests: number;
  costUsd: number;
  providers: ProviderUse[];
  /** Its newest process.exec / file.write events (at most ACTIVITY_PER_PROCESS). */
  activity: TimelineRow[];
  children: ProcessNode[];
}

export interface FlatProcess {
  node: ProcessNode;
  depth: number;
}

/** pid 0/1 are the kernel and init: every daemon's parent, not a useful group. */
const SYSTEM_PIDS = new Set([0, 1]);

export function buildProcessTree(rows: ProcessProviderRow[], activity: readonly TimelineRow[] = []): ProcessNode[] {
  const nodes = new Map<number, ProcessNode>();
  const parentNames = new Map<number, string>();
  for (const r of rows) {
    let n = nodes.get(r.pid);
    if (!n) {
      n = { pid: r.pid, ppid: r.ppid, name: r.process_name ?? "?", exe: r.exe, seen: true, lastMs: r.last_ms, requests: 0, costUsd: 0, providers: [], activity: [], children: [] };
      nodes.set(r.pid, n);
    }
    if (r.last_ms > n.lastMs) {
      // The newest sighting names the process (a pid can be reused).
      n.lastMs = r.last_ms;
      n.name = r.process_name ?? n.name;
      n.ppid = r.ppid ?? n.ppid;
      n.exe = r.exe ?? n.exe;
    }
    if (r.ppid !== null && r.parent_name) parentNames.set(r.ppid, r.parent_name);
    n.requests += r.requests;
    n.costUsd += r.cost_usd;
    if (r.provider) n.providers.push({ provider: r.provider, requests: r.requests, events: r.events, cost_usd: r.cost_usd });
  }
  for (const n of [...nodes.values()]) {
    if (n.ppid === null || SYSTEM_PIDS.has(n.ppid) || nodes.has(n.ppid)) continue;
    nodes.set(n.ppid, {
      pid: n.ppid,
      ppid: null,
      name: parentNames.get(n.ppid) ?? "?",
      exe: null,
      seen: false,
      lastMs: n.lastMs,
      requests: 0,
      costUsd: 0,
      providers: [],
      activity: [],
      children: [],
    });
  }
  for (const a of [...activity].sort((x, y) => y.ts_ms - x.ts_ms)) {
    const n = a.pid !== null ? nodes.get(a.pid) : undefined;
    if (n && n.activity.length < ACTIVITY_PER_PROCESS) n.activity.push(a);
  }
  const roots: ProcessNode[] = [];
  for (const n of nodes.values()) {
    const parent = n.ppid !== null && n.ppid !== n.pid ? nodes.get(n.ppid) : undefined;
    if (parent && !isAncestor(n, parent, nodes)) {
      parent.children.push(n);
      if (!parent.seen) parent.lastMs = Math.max(parent.lastMs, n.lastMs);
    } else roots.push(n);
  }
  const sort = (list: ProcessNode[]) => {
    list.sort((a, b) => b.lastMs - a.lastMs || a.pid - b.pid);
    for (const n of list) {
      n.providers.sort((a, b) => b.requests - a.requests);
      sort(n.children);
    }
  };
  sort(roots);
  return roots;
}

/** Depth-first order for an indented table. */
export function flattenTree(roots: ProcessNode[], maxDepth = 32): FlatProcess[] {
  const out: FlatProcess[] = [];
  const walk = (list: ProcessNode[], depth: number) => {
    for (const node of list) {
      out.push({ node, depth });
      if (depth < maxDepth) walk(node.children, depth + 1);
    }
  };
  walk(roots, 0);
  return out;
}

/** True when `node` is already above `candidate` in the tree: linking would make a cycle. */
function isAncestor(node: ProcessNode, candidate: ProcessNode, nodes: Map<number, ProcessNode>): boolean {
  let cur: ProcessNode | undefined = candidate;
  for (let hops = 0; cur && hops < 1000; hops++) {
    if (cur === node) return true;
    cur = cur.ppid !== null && cur.ppid !== cur.pid ? nodes.get(cur.ppid) : undefined;
  }
  return false;
}
