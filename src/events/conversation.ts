// conversation_id: one id for the turns of one conversation.
//
// Where the API names the thread, that name is used: the OpenAI Responses API's `conversation`, and its
// `previous_response_id` chain (the sensor maps each response id to the conversation it belongs to).
// Elsewhere (Chat Completions, Anthropic, Gemini, Bedrock, Cohere, Ollama) clients re-send the whole
// history every turn, so the heuristic is: same process, same provider, same system prompt and same
// first user message → same conversation. Two conversations that start with identical words in the same
// process are merged; a client that rewrites or trims the start of its history starts a new id.
import type { AiMessage } from "../decode/providers/types.ts";
import { sha256Hex } from "../util/sha256.ts";
import { TextMemo } from "../util/text-memo.ts";

export interface ConversationParts {
  /** Whose conversation: the process (pid and executable), "?" when unknown. */
  scope: string;
  provider: string;
  system?: string;
  messages: readonly AiMessage[];
}

/** "conv_" + 24 hex digits from the opening of a conversation; undefined when it has no user message yet. */
export function conversationKey(p: ConversationParts): string | undefined {
  // Loops, not find/filter/map: no closures and arrays for every call.
  let firstUser: AiMessage | undefined;
  for (const m of p.messages) {
    if (m.role === "user" && (m.content ?? "") !== "") {
      firstUser = m;
      break;
    }
  }
  if (!firstUser) return undefined;
  let system = p.system;
  if (system === undefined) {
    system = "";
    let first = true;
    for (const m of p.messages) {
      if (m.role !== "system") continue;
      system = first ? (m.content ?? "") : `${system}\n${m.content ?? ""}`;
      first = false;
    }
  }
  return conversationIdFrom(["heuristic", p.scope, p.provider, system, firstUser.content!]);
}

/** A conversation id derived from a provider's own identifier (e.g. a Responses API response id). */
export function conversationIdFrom(parts: readonly string[]): string {
  // One update of the joined text: the same bytes as one update per part, fewer calls into the hasher.
  let text = "";
  for (const part of parts) text += `${part.length}:${part}`;
  let id = recent.get(text);
  if (id === undefined) {
    id = `conv_${sha256Hex(text).slice(0, 24)}`;
    recent.set(text, id);
  }
  return id;
}

/**
 * Ids of openings seen recently: every turn of a conversation re-sends its opening, hashed again for the same
 * id. A hit costs a hash-table lookup of the text instead of a SHA-256. Bounded by count and characters (64 K:
 * kept in memory while the sensor idles); cleared when full.
 */
const recent = new TextMemo<string>(64, 64 * 1024);
