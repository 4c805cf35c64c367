// Which credential and model an ai.response is counted under: its request's (the first ai.request with its
// request_id stored before it), as migration 0001's trigger found the credential by parsing the request's
// stored JSON (the model since migration 0003: one call, one inventory row).
// The store remembers the credentials of the requests it recently stored, so the usual response (a moment
// after its request, from the same sensor) costs a Map lookup; after a restart, once the sensor has gone
// idle (forget(): its memory is given back) or for a request long gone from the map, it reads the request's
// row by the request_id index.
import type { Database, Statement } from "bun:sqlite";
import { NO_CREDENTIAL, type RequestFacts } from "./columns.ts";

const NO_FACTS: Readonly<RequestFacts> = { ...NO_CREDENTIAL, callModel: null };

/** Requests remembered (FIFO): a response normally follows its request within seconds. */
const REMEMBERED = 10_000;

interface CredentialRow {
  key_prefix: string | null;
  key_hash: string | null;
  auth_type: string | null;
  call_model: string | null;
}

export class RequestCredentials {
  private readonly remembered = new Map<string, RequestFacts>();
  /**
   * The remembered ids in the order they came, a ring once full, so forgetting the oldest is O(1):
   * `remembered.keys().next()` walks past every entry deleted before it (~7 µs a call at 10,000).
   */
  private readonly order: string[] = [];
  private oldest = 0;
  /** Requests of the batch being written: remembered only once it commits (a rollback stores none of them). */
  private readonly pending = new Map<string, RequestFacts>();
  private lookup: Statement<CredentialRow, [string]> | undefined;

  constructor(
    private readonly sqlite: Database,
    private readonly max = REMEMBERED,
  ) {}

  /** Call for each ai.request the store has just inserted (not for a duplicate it ignored). */
  stored(requestId: string, credential: RequestFacts): void {
    // The first request with an id wins, as the trigger's lookup found the first. (Were that one forgotten,
    // a later one would be remembered instead; the sensor's request_id is the request's own event_id, so
    // two stored requests never share one.)
    if (!this.pending.has(requestId) && !this.remembered.has(requestId)) this.pending.set(requestId, credential);
  }

  /** The credential and model of the request a response answers; all null when no such request was stored. */
  forResponse(requestId: string): RequestFacts {
    const known = this.pending.get(requestId) ?? this.remembered.get(requestId);
    if (known) return known;
    this.lookup ??= this.sqlite.prepare<CredentialRow, [string]>(
      "SELECT key_prefix, key_hash, auth_type, call_model FROM events WHERE request_id = ? AND event_type = 'ai.request' ORDER BY rowid LIMIT 1",
    );
    const row = this.lookup.get(requestId);
    return row ? { keyPrefix: row.key_prefix, keyHash: row.key_hash, authType: row.auth_type, callModel: row.call_model } : NO_FACTS;
  }

  /** The batch committed: remember its requests, forgetting the oldest beyond the bound. */
  commit(): void {
    for (const [id, credential] of this.pending) {
      this.remembered.set(id, credential);
      if (this.order.length < this.max) {
        this.order.push(id);
        continue;
      }
      this.remembered.delete(this.order[this.oldest]!);
      this.order[this.oldest] = id;
      this.oldest = (this.oldest + 1) % this.max;
    }
    this.pending.clear();
  }

  /**
   * Forgets every committed request (the store calls it when the sensor goes idle): a response that comes
   * later reads its request's row, as after a restart. 10,000 remembered requests hold ~3 MB of live JS heap
   * and ~10 MB of RSS once idle (the heap blocks they keep, interleaved with their calls' garbage: bench/README.md,
   * issue 17, seventh pass); forgetting them costs nothing while traffic flows.
   */
  forget(): void {
    this.remembered.clear();
    this.order.length = 0;
    this.oldest = 0;
  }

  rollback(): void {
    this.pending.clear();
  }

  close(): void {
    this.lookup?.finalize();
  }
}
