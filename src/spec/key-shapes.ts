// The shapes of AI provider API keys: one list, read by the decoders (the non-secret prefix reported in
// data.auth.key_prefix) and by the secret masker (src/events/secrets.ts), so a key kind the decoders
// recognise is always masked wherever it appears in text, command lines included.

export interface KeyShape {
  /** Public prefix the provider puts on every key ("sk-ant-", "gsk_"). */
  prefix: string;
  /** Kind reported when masking ("[REDACTED:groq_key]"). */
  kind: string;
  /** Regex source of what follows the prefix in a real key: long enough that ordinary words never match. */
  body: string;
}

const TOKEN = "[A-Za-z0-9_-]{20,}";
/** After an underscore-style prefix ("hf_", "gsk_") keys are letters and digits: "hf_hub_download" is no key. */
const ALNUM = "[A-Za-z0-9]{20,}";

/** Most specific prefix first ("sk-ant-" before "sk-"): the first that matches names the key. */
export const API_KEY_SHAPES: readonly KeyShape[] = Object.freeze([
  { prefix: "sk-ant-", kind: "anthropic_key", body: TOKEN },
  { prefix: "sk-proj-", kind: "openai_key", body: TOKEN },
  { prefix: "sk-or-", kind: "openrouter_key", body: TOKEN },
  { prefix: "nvapi-", kind: "nvidia_key", body: TOKEN },
  { prefix: "pplx-", kind: "perplexity_key", body: ALNUM },
  { prefix: "gsk_", kind: "groq_key", body: ALNUM },
  { prefix: "xai-", kind: "xai_key", body: ALNUM },
  { prefix: "csk-", kind: "cerebras_key", body: ALNUM },
  { prefix: "AIza", kind: "google_api_key", body: "[0-9A-Za-z_-]{35}" },
  { prefix: "hf_", kind: "huggingface_token", body: ALNUM },
  { prefix: "r8_", kind: "replicate_key", body: ALNUM },
  { prefix: "fw_", kind: "fireworks_key", body: ALNUM },
  { prefix: "sk-", kind: "openai_key", body: TOKEN },
]);

/** The shape a key starts with (at least 9 characters after the prefix), or undefined. */
export function keyShapeOf(key: string): KeyShape | undefined {
  return API_KEY_SHAPES.find((s) => key.startsWith(s.prefix) && key.length > s.prefix.length + 8);
}

export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
