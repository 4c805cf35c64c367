// One line per exporter's counters: `oisp status` prints it, the dashboard's Control page shows it. Apart
// from status.ts so that the sensor commands can use it without loading what `oisp status` reads with.
import type { ExporterStats } from "./queue.ts";

export function exporterLine(e: ExporterStats): string {
  const parts = [e.state, `sent ${e.sent}`, `queued ${e.queued}`];
  if (e.spooledBatches || e.spooledBytes) parts.push(`spooled ${e.spooledBatches} batches (${bytes(e.spooledBytes)})`);
  parts.push(`dropped ${e.dropped}`);
  if (e.failedAttempts) parts.push(`${e.failedAttempts} failed attempts`);
  if (e.lastError) parts.push(`last error: ${e.lastError}`);
  return parts.join(" · ");
}

/** 1536 → "1.5 KiB". */
export function bytes(n: number): string {
  if (!Number.isFinite(n)) return "?";
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
