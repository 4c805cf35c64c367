// Where redacted events go: the contract between the pipeline that makes events (src/sensor) and what
// keeps or ships them (the store, JSONL, exporters in src/sinks, the live feed). It sits with the event
// types so that both sides import it and sinks never import the sensor.
import type { OispEvent } from "./schema.ts";

export interface EventOutput {
  /** Receives each batch of redacted events. Must not throw; failures are the output's to count. */
  write(events: OispEvent[]): void;
}
