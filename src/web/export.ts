// Event export as JSONL (the stored events, one per line) or CSV (the indexed columns), streamed chunk
// by chunk as the client reads: a million rows never sit in memory.
import type { EventRecord, WebFilter, WebQueries } from "../store/queries.ts";
import { csvField } from "../util/csv.ts";

export const CSV_COLUMNS = [
  "ts",
  "event_id",
  "event_type",
  "provider",
  "model",
  "pid",
  "process_name",
  "request_id",
  "success",
  "input_tokens",
  "output_tokens",
  "cost_usd",
  "latency_ms",
  "completeness",
] as const;

export function csvLine(values: readonly unknown[]): string {
  return `${values.map(csvField).join(",")}\r\n`;
}

export function csvRow(r: EventRecord): string {
  return csvLine(CSV_COLUMNS.map((c) => r[c]));
}

export type ExportFormat = "jsonl" | "csv";

/** A streamed download of every event matching `filter`, oldest first. */
export function exportResponse(queries: WebQueries, filter: WebFilter, format: ExportFormat, nowMs = Date.now()): Response {
  const encoder = new TextEncoder();
  let chunks: Generator<EventRecord[]> | undefined;
  let headerSent = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      // Bun keeps calling a synchronous pull until the socket pushes back (megabytes), holding the event
      // loop and every other dashboard request meanwhile: yielding first lets the loop turn between chunks.
      await new Promise<void>((resolve) => setImmediate(resolve));
      try {
        if (format === "csv" && !headerSent) {
          headerSent = true;
          controller.enqueue(encoder.encode(csvLine(CSV_COLUMNS)));
          return;
        }
        chunks ??= queries.exportChunks(filter);
        const next = chunks.next();
        if (next.done) {
          controller.close();
          return;
        }
        const text = format === "csv" ? next.value.map(csvRow).join("") : next.value.map((r) => `${r.json}\n`).join("");
        controller.enqueue(encoder.encode(text));
      } catch (err) {
        // Headers are gone already: end the stream with an error so the download shows as failed, not short.
        controller.error(err);
      }
    },
    cancel() {
      chunks?.return(undefined);
    },
  });
  const stamp = new Date(nowMs).toISOString().replace(/[:.]/g, "-").slice(0, 19);
  return new Response(stream, {
    headers: {
      "Content-Type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
      "Content-Disposition": `attachment; filename="oisp-events-${stamp}.${format}"`,
      "Cache-Control": "no-store",
    },
  });
}
