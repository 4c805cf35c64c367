// The sensor's core, without the command around it: store, outputs, exporters and the pipeline. Shared by
// `oisp sensor` (fed by the IPC server) and the sensor worker of `oisp up` (fed by the relay's tap).
import fs from "node:fs";
import path from "node:path";
import type { RedactionMode } from "../config/settings.ts";
import { startExporters, type ExportFlagValues, type ExporterOutput } from "../sinks/index.ts";
import { JsonlSink } from "../sinks/jsonl.ts";
import { openStore } from "../store/index.ts";
import type { Logger } from "../util/log.ts";
import { VERSION } from "../version.ts";
import { CommittedLiveOutput, JsonlOutput, LiveOutput, StoreOutput } from "./outputs.ts";
import type { EventOutput } from "../events/output.ts";
import { SensorPipeline } from "./pipeline.ts";

export interface SensorConfig {
  dataDir: string;
  dbPath: string;
  outputPath?: string;
  redaction: RedactionMode;
  processFilter: string[];
  verbose: boolean;
  log: Logger;
  exportValues?: ExportFlagValues;
}

export interface RunningSensor {
  pipeline: SensorPipeline;
  storeOutput: StoreOutput;
  live: LiveOutput;
  store: ReturnType<typeof openStore>;
  jsonl?: JsonlSink;
  exporters: ExporterOutput[];
  close(): Promise<void>;
}

/** Opens the store and outputs and builds the pipeline. The caller feeds it (IPC server or in-process proxy). */
export function startSensorCore(cfg: SensorConfig): RunningSensor {
  fs.mkdirSync(path.dirname(cfg.dbPath), { recursive: true, mode: 0o700 });
  // The sensor is the only writer (dashboard, status and analyze read). Inserts share a thread with decoding
  // (and, in `oisp sensor`, with the IPC server), so a lock held by an outside tool must fail fast into
  // StoreOutput's in-memory retry, not stall everything 5 s a try.
  const store = openStore(cfg.dbPath, { busyTimeoutMs: 100 });
  const storeOutput = new StoreOutput(store, cfg.log);
  const live = new LiveOutput();
  // The store first: the live output waits for the commit of what the store was just given.
  const outputs: EventOutput[] = [storeOutput, new CommittedLiveOutput(storeOutput, live)];
  let jsonl: JsonlSink | undefined;
  if (cfg.outputPath) {
    jsonl = new JsonlSink(cfg.outputPath, { onError: (err: Error) => cfg.log("error", `jsonl: ${err.message}`) });
    // Events re-derived from connections a redirector resends after a sensor restart are exported once.
    outputs.push(new JsonlOutput(jsonl, { isStored: (id) => store.get(id) !== undefined }));
    const sink = jsonl;
    storeOutput.beforeCommit = () => sink.flush();
  }
  const exporters = startExporters({ values: cfg.exportValues ?? {}, dataDir: cfg.dataDir, redaction: cfg.redaction }, cfg.log);
  outputs.push(...exporters);
  const pipeline = new SensorPipeline({
    redaction: cfg.redaction,
    collectorVersion: VERSION,
    outputs,
    log: cfg.log,
    processFilter: cfg.processFilter,
  });
  return {
    pipeline,
    storeOutput,
    live,
    store,
    jsonl,
    exporters,
    async close() {
      storeOutput.flush();
      await Promise.all(exporters.map((e) => e.close()));
      jsonl?.close();
      store.close();
    },
  };
}

