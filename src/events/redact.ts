// What of an event may leave the sensor. Three modes:
//   safe    (default) structure, counts and hashes stay; every piece of content becomes a $redacted marker.
//   full    content stays, credentials inside it are masked.
//   minimal content is dropped entirely; counts, model, usage and timing stay.
// In every mode credentials are masked in all remaining strings (command lines carry keys too) and
// `auth` is cut down to type + key prefix + key fingerprint.
import { safeCommandArgs, safeCommandLine } from "./cmdline.ts";
import { contentHash } from "./hash.ts";
import type { OispEvent, RedactedContent } from "./schema.ts";
import { FindingTally, isSecretKey, maskSecrets, maskSecretsInto, type SecretFinding } from "./secrets.ts";

export { maskSecrets, type SecretFinding } from "./secrets.ts";

export type RedactionMode = "safe" | "full" | "minimal";

export const REDACTION_MODES: readonly RedactionMode[] = ["safe", "full", "minimal"];

/** Nesting deeper than this (model-written tool arguments) is replaced whole rather than walked. */
const MAX_DEPTH = 64;

type Json = Record<string, unknown>;

/** Returns a redacted copy of `e`; `e` itself is not modified. */
export function redactEvent(e: OispEvent, mode: RedactionMode): OispEvent {
  return redactOwnedEvent(cloneJson(e) as OispEvent, mode);
}

/**
 * Redacts `out` itself and returns it: for a caller that owns the event's whole tree (no object in it is
 * held anywhere else), such as the sensor's pipeline with the events its builders just made. Saves the copy,
 * which was a tenth of the sensor's allocations per call.
 */
export function redactOwnedEvent(out: OispEvent, mode: RedactionMode): OispEvent {
  const tally = new FindingTally();
  const removed = handleContent(out, mode);
  if (isObject(out.data)) restrictAuth(out.data);
  if (out.event_type === "process.exec") maskArgPairs(out.data, tally);
  maskTree(out, tally, 0, mode);
  // After masking, so a credential in a command line is reported by kind and kept as its mask.
  if (mode !== "full") reduceCommandLines(out);
  updateConfidence(out, mode, removed, tally);
  return out;
}

/** The event's process (and a process.exec's data) keep no prompt text that sits in their command line. */
function reduceCommandLines(e: OispEvent): void {
  const data = isObject(e.data) ? (e.data as Json) : undefined;
  for (const holder of [e.process, data, data?.process, data?.parent]) {
    if (!isObject(holder)) continue;
    if (typeof holder.cmdline === "string") holder.cmdline = safeCommandLine(holder.cmdline);
    if (Array.isArray(holder.cmdline_args)) holder.cmdline_args = safeCommandArgs(holder.cmdline_args);
  }
  // process.exec carries the new process's argv as data.args.
  if (e.event_type === "process.exec" && data && Array.isArray(data.args)) data.args = safeCommandArgs(data.args);
}

// ---------------------------------------------------------------------------------------------
// content, per event type

/**
 * Visits each content field of the event: full keeps it (adding hashes), safe swaps it for a marker,
 * minimal deletes it. Returns whether any content was replaced or deleted.
 */
function handleContent(e: OispEvent, mode: RedactionMode): boolean {
  const data = e.data as Json;
  // Plain functions and loops, no closure or filtered array per event: this runs for every event.
  let removed = false;
  switch (e.event_type) {
    case "ai.request": {
      const messages = data.messages;
      if (Array.isArray(messages)) {
        for (const m of messages) {
          if (!isObject(m)) continue;
          setContentMeta(m);
          removed = content(m, "content", mode) || removed;
        }
      }
      removed = wholeField(data, "messages", mode) || removed; // messages_count stays
      const tools = data.tools;
      if (Array.isArray(tools)) for (const t of tools) if (isObject(t)) removed = wholeField(t, "description", mode) || removed;
      break;
    }
    case "ai.response": {
      const choices = data.choices;
      if (Array.isArray(choices)) {
        for (const choice of choices) {
          if (!isObject(choice) || !isObject(choice.message)) continue;
          setContentMeta(choice.message);
          removed = content(choice.message, "content", mode) || removed;
        }
      }
      removed = wholeField(data, "choices", mode) || removed; // finish_reason stays at the top level
      const toolCalls = data.tool_calls;
      if (Array.isArray(toolCalls)) {
        for (const tc of toolCalls) {
          if (!isObject(tc)) continue;
          if (tc.arguments !== undefined) tc.arguments_hash ??= contentHash(textOf(tc.arguments));
          removed = content(tc, "arguments", mode) || removed;
        }
      }
      if (isObject(e.attrs)) removed = content(e.attrs, "thinking", mode) || removed;
      break;
    }
    case "agent.tool_call":
      if (data.arguments !== undefined) data.arguments_hash ??= contentHash(textOf(data.arguments));
      removed = content(data, "arguments", mode);
      break;
    case "agent.tool_result":
      if (data.result !== undefined) data.result_hash ??= contentHash(textOf(data.result));
      removed = content(data, "result", mode);
      break;
    case "file.write":
      // A preview is the file's content: full mode only. It must stay a string (OISP), so it goes whole.
      if (data.content_preview !== undefined && mode !== "full") {
        removed = true;
        delete data.content_preview;
      }
      break;
    case "network.connect":
    case "process.exec":
      // Command lines are not content; the credentials in them are masked below, in every mode.
      break;
  }
  return removed;
}

/** A content field: full keeps it, safe swaps it for a marker, minimal deletes it. True when replaced or deleted. */
function content(holder: Json, key: string, mode: RedactionMode): boolean {
  const value = holder[key];
  if (value === undefined || isRedactedMarker(value) || mode === "full") return false;
  if (mode === "minimal") delete holder[key];
  else holder[key] = marker(textOf(value), "default_safe", "safe");
  return true;
}

/** A field that only minimal mode drops whole. True when deleted. */
function wholeField(holder: Json, key: string, mode: RedactionMode): boolean {
  if (holder[key] === undefined || mode !== "minimal") return false;
  delete holder[key];
  return true;
}

/** Hash and length of a message's text, so redacted messages still correlate. */
function setContentMeta(message: Json): void {
  if (typeof message.content !== "string") return;
  message.content_hash ??= contentHash(message.content);
  message.content_length ??= message.content.length;
}

function marker(text: string, reason: string, profile: RedactionMode): RedactedContent {
  const findings = maskSecrets(text).findings;
  const redacted: RedactedContent["$redacted"] = { reason, original_length: text.length, hash: contentHash(text), redaction_profile: profile };
  // Say that the removed text held a credential (kinds and counts only).
  if (findings.length > 0) {
    redacted.detector = "regex_secret";
    redacted.findings = findings;
  }
  return { $redacted: redacted };
}

function isRedactedMarker(v: unknown): boolean {
  return isObject(v) && isObject(v.$redacted);
}

/** Content as text: strings as they are, anything else (parsed tool arguments) as its JSON. */
function textOf(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return JSON.stringify(v) ?? "";
  } catch {
    return "";
  }
}

// ---------------------------------------------------------------------------------------------
// auth and secrets, every mode

/** `auth` may carry nothing but its type, an 8-character key prefix and the key fingerprint. */
function restrictAuth(data: Json): void {
  const auth = data.auth;
  if (auth === undefined) return;
  if (!isObject(auth)) {
    delete data.auth;
    return;
  }
  const safe: Json = {};
  if (typeof auth.type === "string") safe.type = auth.type;
  if (typeof auth.account_type === "string") safe.account_type = auth.account_type;
  if (typeof auth.key_prefix === "string") safe.key_prefix = auth.key_prefix.slice(0, 8);
  if (typeof auth.key_hash === "string") safe.key_hash = auth.key_hash;
  data.auth = safe;
}

/**
 * argv keeps a flag and its value apart ("--user", "bob:pw"; "-H", "Authorization: Bearer x"), where the
 * patterns that need both never match: each argument is masked as it reads after its predecessor.
 */
function maskArgPairs(data: Json, tally: FindingTally): void {
  const args = data.args;
  if (!Array.isArray(args)) return;
  for (let i = args.length - 1; i > 0; i--) {
    const prev = args[i - 1];
    const cur = args[i];
    if (typeof prev !== "string" || typeof cur !== "string") continue;
    const pair = maskSecrets(`${prev} ${cur}`);
    if (pair.findings.length === 0 || !pair.text.startsWith(`${prev} `)) continue;
    const masked = pair.text.slice(prev.length + 1);
    if (masked === cur) continue;
    tally.add(pair.findings);
    args[i] = masked;
  }
}

/** Masks credentials in every string of `node`, in place. $redacted markers hold only hashes and are skipped. */
function maskTree(node: unknown, tally: FindingTally, depth: number, mode: RedactionMode): void {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const value = node[i];
      const masked = maskValue(value, undefined, tally, depth + 1, mode);
      if (masked !== value) node[i] = masked;
    }
  } else if (isObject(node)) {
    if (isRedactedMarker(node)) return;
    // Written back only when changed: nearly every value is clean. for-in, not Object.keys: no array per
    // object; the builders' and JSON.parse's objects have no enumerable inherited keys, and own ones only are read.
    for (const key in node) {
      if (!Object.hasOwn(node, key)) continue;
      const value = node[key];
      const masked = maskValue(value, key, tally, depth + 1, mode);
      if (masked !== value) node[key] = masked;
    }
  }
}

function maskValue(value: unknown, key: string | undefined, tally: FindingTally, depth: number, mode: RedactionMode): unknown {
  if (typeof value === "string") {
    if (key !== undefined && value !== "" && isSecretKey(key)) {
      tally.add([{ type: "secret_field", count: 1 }]);
      return "[REDACTED:secret_field]";
    }
    return maskSecretsInto(value, tally);
  }
  if (typeof value !== "object" || value === null) return value;
  if (depth > MAX_DEPTH) {
    tally.add([{ type: "too_deep", count: 1 }]);
    return marker(textOf(value), "too_deep", mode);
  }
  maskTree(value, tally, depth, mode);
  return value;
}

// ---------------------------------------------------------------------------------------------
// confidence

function updateConfidence(e: OispEvent, mode: RedactionMode, removed: boolean, tally: FindingTally): void {
  const findings: SecretFinding[] = tally.total === 0 ? [] : tally.list().filter((f) => f.type !== "too_deep");
  const confidence = e.confidence;
  if (mode === "safe" && removed) confidence.completeness = "redacted";
  if (mode === "minimal") confidence.completeness = "metadata_only";
  confidence.redaction_applied = removed || tally.total > 0;
  confidence.redaction_profile = mode;
  if (findings.length > 0) {
    confidence.reasons = [...(confidence.reasons ?? []), "secrets_masked"];
    e.attrs = { ...e.attrs, redaction_findings: findings };
  }
}

// ---------------------------------------------------------------------------------------------

/**
 * Deep copy of plain data (what the event builders make: objects, arrays, primitives), 2-3x faster than
 * structuredClone, which serialises. Anything else (a Date, a typed array) is kept by reference: redaction
 * only ever replaces strings and plain containers, so such values are never modified in place.
 */
function cloneJson(v: unknown, depth = 0): unknown {
  if (typeof v !== "object" || v === null || depth > 2 * MAX_DEPTH) return v;
  if (Array.isArray(v)) {
    const out = new Array<unknown>(v.length);
    for (let i = 0; i < v.length; i++) out[i] = cloneJson(v[i], depth + 1);
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return v;
  const out: Json = {};
  for (const key of Object.keys(v)) {
    const value = cloneJson((v as Json)[key], depth + 1);
    // A parsed "__proto__" key (model-written JSON) is data: assigning it would set the copy's prototype.
    if (key === "__proto__") Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    else out[key] = value;
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

