// Finds credentials inside free text and masks them. Used on every string an event carries:
// prompts in "full" mode, and in all modes the fields that are not content (command lines, error
// messages, URLs), because those are exactly where keys get pasted.
import { API_KEY_SHAPES, escapeRegex } from "../spec/key-shapes.ts";

export interface SecretFinding {
  type: string;
  count: number;
}

interface SecretPattern {
  type: string;
  regex: RegExp;
  /** Text that replaces the whole match; `groups` are the regex capture groups. */
  mask: (groups: string[]) => string;
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
  },
  {
    type: "credential",
    // curl-style user:password on a command line (-u, --user, --proxy-user), before the
    // key patterns so "--user AKIA…:secret" is masked whole, secret included.
    regex: /((?:^|\s)(?:-u|--user|--proxy-user))((?:\s+|=)["']?)[^\s"'[\]:]*:[^\s"'[\]]+/g,
    mask: keepPrefix("credential"),
  },
  // Provider API keys: the same list the decoders read key prefixes from (most specific first).
  ...API_KEY_SHAPES.map((k) => ({ type: k.kind, regex: new RegExp(`\\b${escapeRegex(k.prefix)}${k.body}`, "g"), mask: whole(k.kind) })),
  { type: "aws_access_key", regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, mask: whole("aws_access_key") },
  { type: "github_token", regex: /\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{20,})/g, mask: whole("github_token") },
  { type: "jwt", regex: /\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/g, mask: whole("jwt") },
  { type: "bearer_token", regex: /\b(Bearer)(\s+)[A-Za-z0-9\-._~+/]{8,}=*/gi, mask: keepPrefix("bearer_token") },
  {
    type: "password",
    regex: /("(?:password|passwd|pwd|passphrase)"\s*:\s*")(?:[^"\\]|\\.)+(?=")/gi,
    mask: (g) => `${g[0]}${tag("password")}`,
  },
  {
    type: "password",
    regex: /(?<!(?<!\\)[A-Za-z0-9])(password|passwd|pwd|passphrase)(\s*[=:]\s*["']?)[^\s"'&,;[\]{}]+/gi,
    mask: keepPrefix("password"),
  },
  {
    type: "credential",
    regex:
      /(?<!(?<!\\)[A-Za-z0-9])(api[_-]?key|secret[_-]?key|client[_-]?secret|access[_-]?token|refresh[_-]?token|auth[_-]?token|security[_-]?token|session[_-]?token|aws_secret_access_key)(["']?\s*[=:]\s*["']?)[A-Za-z0-9\-._~+/]{8,}=*/gi,
    mask: keepPrefix("credential"),
  },
  {
    type: "credential",
    // A command-line flag named like a credential, its value after "=" or a space: --api-key 9f3a…,
    // --aws-secret-access-key=…, --hf-token …. Flags merely containing the word (--max-tokens 5) do not match.
    regex: /((?:^|\s)--(?:[A-Za-z0-9]+[-_])*(?:api[-_]?key|key|secret|token|password|passwd|passphrase|credentials?)(?:\s+|=)["']?)()(?!-)[^\s"'[\]]+/gi,
    mask: keepPrefix("credential"),
  },
  {
    type: "credential",
    // Keys passed in a URL query (?key= for Gemini, ?api_key=, ?token=, SAS ?sig=), whatever their format.
    regex: /([?&](?:key|api_key|apikey|token|access_token|sig))(=)[^\s&#"'[\]]{8,}/gi,
    mask: keepPrefix("credential"),
  },
  {
    type: "url_password",
    // Brackets are excluded so an earlier "[REDACTED:...]" is never taken for user:password.
    regex: /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/[\]]+:)[^\s@/[\]]+(?=@)/gi,
    mask: (g) => `${g[0]}${tag("url_password")}`,
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

/**
 * Every pattern in one case-insensitive alternation: a string it does not match holds no secret by any
 * pattern, and is checked in one pass instead of one per pattern. (It may match more than the patterns do,
 * case-sensitive ones included; those strings take the exact path below.)
 */
const ANY_SECRET = new RegExp(PATTERNS.map((p) => `(?:${p.regex.source})`).join("|"), "i");
/** Every kind of credential recognised (tests check each has a case that the fast pre-check lets through). */
export const SECRET_KINDS: readonly string[] = [...new Set(PATTERNS.map((p) => p.type))];

/**
 * What every match of some pattern contains, case-insensitively: "-----BEGIN ", -u/--user/--proxy-user
 * after whitespace, a provider key prefix, AKIA/ASIA, gh?_/github_pat_, eyJ, Bearer, pass/pwd,
 * key/secret/token/credential (named credentials, flags, URL query keys), "sig=", "://". Scanning for these costs a tenth
 * of ANY_SECRET, and most text (prompts, answers) holds none of them. Keep in step with PATTERNS.
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

/** Masks every credential found in `text`; `findings` counts them by kind. Normal text is returned unchanged. */
export function maskSecrets(text: string): { text: string; findings: SecretFinding[] } {
  if (text.length < MIN_SECRET_LENGTH) return { text, findings: NO_FINDINGS };
  const short = text.length <= KNOWN_CLEAN_MAX_LENGTH;
  if (short && knownClean.has(text)) return { text, findings: NO_FINDINGS };
  if (!SECRET_HINT.test(text) || !ANY_SECRET.test(text)) {
    if (short) {
      if (knownClean.size >= KNOWN_CLEAN_MAX_ENTRIES) knownClean.clear();
      knownClean.add(text);
    }
    return { text, findings: NO_FINDINGS };
  }
  const counts = new Map<string, number>();
  let out = text;
  for (const pattern of PATTERNS) {
    pattern.regex.lastIndex = 0;
    if (!pattern.regex.test(out)) continue; // cheap pre-check: most strings hold no secret at all
    out = out.replace(pattern.regex, (...args: unknown[]) => {
      counts.set(pattern.type, (counts.get(pattern.type) ?? 0) + 1);
      return pattern.mask(captureGroups(args));
    });
  }
  return { text: out, findings: [...counts].map(([type, count]) => ({ type, count })) };
}

/** String.replace passes (match, ...groups, offset, input[, namedGroups]): keep the groups. */
function captureGroups(args: unknown[]): string[] {
  const end = args.findIndex((a, i) => i > 0 && typeof a === "number");
  return args.slice(1, end).map((g) => (typeof g === "string" ? g : ""));
}

/** Adds findings from several maskSecrets calls together. */
export class FindingTally {
  private readonly counts = new Map<string, number>();

  add(findings: SecretFinding[]): void {
    for (const f of findings) this.counts.set(f.type, (this.counts.get(f.type) ?? 0) + f.count);
  }

  get total(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  list(): SecretFinding[] {
    return [...this.counts].map(([type, count]) => ({ type, count }));
  }
}
