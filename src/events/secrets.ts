// Finds credentials inside free text and masks them. Used on every string an event carries:
// prompts in "full" mode, and in all modes the fields that are not content (command lines, error
// messages, URLs), because those are exactly where keys get pasted.
import { API_KEY_SHAPES, escapeRegex } from "../spec/key-shapes.ts";
import { TextMemo } from "../util/text-memo.ts";

export interface SecretFinding {
  type: string;
  count: number;
}

interface SecretPattern {
  type: string;
  regex: RegExp;
  /** Text that replaces the whole match; `groups` are the regex capture groups. */
  mask: (groups: string[]) => string;
  /**
   * What every text with a match holds: each inner list names strings of which at least one occurs in it
   * (lower case when the regex ignores case, then looked for in the lower-cased text). Plain substring
   * searches, so a text lacking them is cleared without running the regex. Keep in step with `regex`.
   */
  needs: string[][];
}

const tag = (type: string) => `[REDACTED:${type}]`;
const whole = (type: string) => () => tag(type);
/** Keeps the name and separator of a `name=value` match, masks the value. */
const keepPrefix = (type: string) => (g: string[]) => `${g[0]}${g[1]}${tag(type)}`;

// Order matters: specific key formats first, so "Bearer sk-ant-..." is reported as an Anthropic key,
// and what an earlier pattern masked ("[REDACTED:...]") is never matched again by a later one.
const PATTERNS: SecretPattern[] = [
  {
    type: "private_key",
    // An unterminated block (body cut by a limit) is masked to the end of the text.
    regex: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|$)/g,
    mask: whole("private_key"),
    needs: [["-----BEGIN "]],
  },
  {
    type: "credential",
    // curl-style user:password on a command line (-u, --user, --proxy-user), before the
    // key patterns so "--user AKIA…:secret" is masked whole, secret included.
    regex: /((?:^|\s)(?:-u|--user|--proxy-user))((?:\s+|=)["']?)[^\s"'[\]:]*:[^\s"'[\]]+/g,
    mask: keepPrefix("credential"),
    needs: [["-u"], [":"]], // "--user" and "--proxy-user" contain "-u"
  },
  // Provider API keys: the same list the decoders read key prefixes from (most specific first).
  ...API_KEY_SHAPES.map((k) => ({
    type: k.kind,
    regex: new RegExp(`\\b${escapeRegex(k.prefix)}${k.body}`, "g"),
    mask: whole(k.kind),
    needs: [[k.prefix]],
  })),
  { type: "aws_access_key", regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, mask: whole("aws_access_key"), needs: [["AKIA", "ASIA"]] },
  {
    type: "github_token",
    regex: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})/g,
    mask: whole("github_token"),
    needs: [["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]],
  },
  { type: "jwt", regex: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, mask: whole("jwt"), needs: [[".eyJ"]] },
  { type: "bearer_token", regex: /\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi, mask: keepPrefix("bearer_token"), needs: [["bearer"]] },
  {
    type: "password",
    regex: /("(?:password|passwd|pwd|passphrase)"\s*:\s*")(?:[^"\\]|\\.)+(?=")/gi,
    mask: (g) => `${g[0]}${tag("password")}`,
    needs: [["passw", "pwd", "passphrase"]], // "passw": password, passwd
  },
  {
    type: "password",
    regex: /(?<!(?<!\\)[A-Za-z0-9])(password|passwd|pwd|passphrase)(\s*[=:]\s*["']?)[^\s"'&,;[\]{}]+/gi,
    mask: keepPrefix("password"),
    needs: [["passw", "pwd", "passphrase"]],
  },
  {
    type: "credential",
    regex:
      /(?<!(?<!\\)[A-Za-z0-9])(api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|refresh[_-]?token|auth[_-]?token|security[_-]?token|session[_-]?token|aws_secret_access_key)(["']?\s*[=:]\s*["']?)[A-Za-z0-9\-._~+/]{8,}=*/gi,
    mask: keepPrefix("credential"),
    needs: [["key", "secret", "token"]],
  },
  {
    type: "credential",
    // A command-line flag named like a credential, its value after "=" or a space: --api-key 9f3a…,
    // --aws-secret-access-key=…, --hf-token …. Flags merely containing the word (--max-tokens 5) do not match.
    regex: /((?:^|\s)--(?:[A-Za-z0-9]+[-_])*(?:api[-_]?key|key|secret|token|password|passwd|passphrase|credentials?)(?:\s+|=)["']?)()(?!-)[^\s"'[\]]+/gi,
    mask: keepPrefix("credential"),
    needs: [["--"], ["key", "secret", "token", "passw", "passphrase", "credential"]],
  },
  {
    type: "credential",
    // Keys passed in a URL query (?key= for Gemini, ?api_key=, ?token=, SAS ?sig=), whatever their format.
    regex: /([?&](?:key|api_key|apikey|token|access_token|sig))(=)[^\s&#"'[\]]{8,}/gi,
    mask: keepPrefix("credential"),
    needs: [["key=", "token=", "sig="]],
  },
  {
    type: "url_password",
    // Brackets are excluded so an earlier "[REDACTED:...]" is never taken for user:password.
    regex: /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/[\]]+:)[^\s@/[\]]+(?=@)/gi,
    mask: (g) => `${g[0]}${tag("url_password")}`,
    needs: [["://"], ["@"]],
  },
];

/** Object keys whose string value is a credential whatever it looks like ({"password": "hunter2"}). */
const SECRET_KEY =
  /^(?:password|passwd|pwd|passphrase|secret|client_secret|api[_-]?key|apikey|x-api-key|token|access_token|refresh_token|auth_token|authorization|private_key|aws_secret_access_key)$/i;

/** Events repeat the same few dozen keys: remember the verdicts (bounded, keys are short). */
const secretKeyCache = new Map<string, boolean>();

export function isSecretKey(key: string): boolean {
  let verdict = secretKeyCache.get(key);
  if (verdict === undefined) {
    verdict = SECRET_KEY.test(key);
    if (secretKeyCache.size < 4096 && key.length <= 64) secretKeyCache.set(key, verdict);
  }
  return verdict;
}

/** Every kind of credential recognised (tests check each has a case that the fast pre-check lets through). */
export const SECRET_KINDS: readonly string[] = [...new Set(PATTERNS.map((p) => p.type))];
/** The patterns in the order they are applied (for the tests' reference: every regex run on every text). */
export const SECRET_PATTERNS: ReadonlyArray<Pick<SecretPattern, "type" | "regex" | "mask">> = PATTERNS;

/** A pattern's `needs`, and whether they are looked for in the lower-cased text (the regex ignores case). */
const NEEDS = PATTERNS.map((p) => {
  const caseless = p.regex.flags.includes("i");
  // Upper case in a caseless pattern's needs would never be found, and the pattern never run.
  if (caseless && p.needs.some((l) => l.some((s) => s !== s.toLowerCase()))) throw new Error(`secrets: ${p.type}: needs must be lower case`);
  return { lists: p.needs, caseless };
});

/**
 * Whether `text` holds what every match of the pattern holds. Lower-casing keeps each ASCII letter's place
 * among its neighbours, and a regex without the u flag matches ASCII letters case-insensitively only with
 * ASCII letters, so a caseless match's literals are always found in the lower-cased text.
 */
function mayMatch(needs: (typeof NEEDS)[number], text: string, lower: () => string): boolean {
  const haystack = needs.caseless ? lower() : text;
  for (const anyOf of needs.lists) {
    let found = false;
    for (const literal of anyOf) {
      if (haystack.includes(literal)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

/**
 * What every match of some pattern contains, case-insensitively: "-----BEGIN ", -u/--user/--proxy-user
 * after whitespace, a provider key prefix, AKIA/ASIA, gh?_/github_pat_, eyJ, Bearer, pass/pwd,
 * key/secret/token/credential (named credentials, flags, URL query keys), "sig=", "://". One scan clears most
 * short strings (ids, times, names); text that passes it (prompts say "token" and "key" often) goes to the
 * patterns' own `needs`. Keep in step with PATTERNS.
 */
const SECRET_HINT = new RegExp(
  `-----BEGIN |(?:^|\\s)(?:-u|--user|--proxy-user)|akia|asia|gh[pousr]_|github_pat_|eyj|bearer|pass|pwd|key|secret|token|credential|sig=|:\\/\\/|${API_KEY_SHAPES.map((k) => escapeRegex(k.prefix)).join("|")}`,
  "i",
);
/** Shorter than any match of any pattern ("pwd=x"). */
const MIN_SECRET_LENGTH = 5;
/** Shared by every clean string; frozen so a caller that tried to add to it would fail loudly. */
const NO_FINDINGS = Object.freeze([]) as unknown as SecretFinding[];

/**
 * Short strings found clean recently: events repeat the same model, host, process and header values, and
 * redaction checks every string of every event. Cleared when full (unique ids and timestamps pass through).
 */
const knownClean = new Set<string>();
const KNOWN_CLEAN_MAX_LENGTH = 128;
const KNOWN_CLEAN_MAX_ENTRIES = 1024;

/**
 * Longer texts found clean recently: clients re-send a conversation's whole history (system prompt, earlier
 * turns) with every call, and in safe mode each message is scanned for the kinds of credential it held.
 * A hit costs a hash of the text, a fifth of a scan. Bounded by count and characters (256 K: kept in memory
 * while the sensor idles); cleared when full.
 */
const knownCleanLong = new TextMemo<true>(128, 256 * 1024);
const KNOWN_CLEAN_LONG_MAX_LENGTH = 64 * 1024;

function knownToBeClean(text: string): boolean {
  return text.length <= KNOWN_CLEAN_MAX_LENGTH ? knownClean.has(text) : text.length <= KNOWN_CLEAN_LONG_MAX_LENGTH && knownCleanLong.has(text);
}

function rememberClean(text: string): void {
  if (text.length <= KNOWN_CLEAN_MAX_LENGTH) {
    if (knownClean.size >= KNOWN_CLEAN_MAX_ENTRIES) knownClean.clear();
    knownClean.add(text);
  } else if (text.length <= KNOWN_CLEAN_LONG_MAX_LENGTH) {
    knownCleanLong.set(text, true);
  }
}

/**
 * Masks every credential found in `text`; `findings` counts them by kind. Normal text is returned unchanged.
 * Each pattern runs on what earlier ones left, in order; one whose `needs` the text lacks is skipped, which
 * is what running it would do (it cannot match), for a few substring searches instead of a regex scan: a
 * hint alone let through prompts that merely say "token" or "key", which then paid a scan of every pattern.
 */
export function maskSecrets(text: string): { text: string; findings: SecretFinding[] } {
  const masked = maskFound(text);
  if (masked === undefined) return { text, findings: NO_FINDINGS };
  return { text: masked.text, findings: [...masked.found].map(([type, count]) => ({ type, count })) };
}

/** maskSecrets for a caller adding findings up over many strings: no result object per clean string. */
export function maskSecretsInto(text: string, tally: FindingTally): string {
  const masked = maskFound(text);
  if (masked === undefined) return text;
  tally.addCounts(masked.found);
  return masked.text;
}

/** The masked text and its counts by kind; undefined when `text` holds no credential. */
function maskFound(text: string): { text: string; found: Map<string, number> } | undefined {
  if (text.length < MIN_SECRET_LENGTH || knownToBeClean(text)) return undefined;
  const masked = SECRET_HINT.test(text) ? maskEach(text) : undefined;
  if (masked === undefined) rememberClean(text);
  return masked;
}

/** Each pattern on what earlier ones left, in order; undefined when none matched. */
function maskEach(text: string): { text: string; found: Map<string, number> } | undefined {
  let out = text;
  let lowered: string | undefined;
  const lower = () => (lowered ??= out.toLowerCase());
  let counts: Map<string, number> | undefined;
  for (let i = 0; i < PATTERNS.length; i++) {
    if (!mayMatch(NEEDS[i]!, out, lower)) continue;
    const pattern = PATTERNS[i]!;
    pattern.regex.lastIndex = 0;
    if (!pattern.regex.test(out)) continue;
    const found = (counts ??= new Map<string, number>());
    out = out.replace(pattern.regex, (...args: unknown[]) => {
      found.set(pattern.type, (found.get(pattern.type) ?? 0) + 1);
      return pattern.mask(captureGroups(args));
    });
    lowered = undefined;
  }
  return counts && { text: out, found: counts };
}

/** String.replace passes (match, ...groups, offset, input[, namedGroups]): keep the groups. */
function captureGroups(args: unknown[]): string[] {
  const end = args.findIndex((a, i) => i > 0 && typeof a === "number");
  return args.slice(1, end).map((g) => (typeof g === "string" ? g : ""));
}

/** Adds findings from several maskSecrets calls together. */
export class FindingTally {
  /** Made at the first finding: nearly every event has none, and one tally is made per event. */
  private counts: Map<string, number> | undefined;

  add(findings: SecretFinding[]): void {
    for (const f of findings) {
      const counts = (this.counts ??= new Map<string, number>());
      counts.set(f.type, (counts.get(f.type) ?? 0) + f.count);
    }
  }

  addCounts(found: Map<string, number>): void {
    const counts = (this.counts ??= new Map<string, number>());
    for (const [type, count] of found) counts.set(type, (counts.get(type) ?? 0) + count);
  }

  get total(): number {
    let n = 0;
    if (this.counts) for (const c of this.counts.values()) n += c;
    return n;
  }

  list(): SecretFinding[] {
    return this.counts ? [...this.counts].map(([type, count]) => ({ type, count })) : [];
  }
}
