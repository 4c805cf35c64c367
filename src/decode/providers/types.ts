// Provider-neutral result of parsing one AI API exchange. Built by src/decode/providers/*,
// turned into OISP events by src/events/. Content here is raw: redaction happens in events.

export type RequestType = "chat" | "completion" | "embedding" | "image" | "audio" | "moderation" | "other";
export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter" | "error" | "other";

export interface AiMessage {
  role: "system" | "user" | "assistant" | "tool" | "function";
  /** Text content (text parts joined with "\n"). */
  content?: string;
  toolCallId?: string;
  name?: string;
  imageCount?: number;
  /** Tool calls carried by an assistant message in the request history. */
  toolCalls?: AiToolCall[];
  /** A tool message the agent marked as a failed run (Anthropic is_error, Bedrock status "error"). */
  isError?: boolean;
}

export interface AiToolDefinition {
  name: string;
  type: "function" | "code_interpreter" | "file_search" | "computer_use" | "other";
  description?: string;
}

export interface AiToolCall {
  id?: string;
  name: string;
  /** Arguments exactly as the model produced them (JSON text). */
  arguments: string;
}

export interface AiUsage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
  cachedTokens?: number;
  cacheWriteTokens?: number;
  reasoningTokens?: number;
}

export interface AiAuth {
  type: "api_key" | "oauth" | "none" | "unknown";
  /** Non-secret prefix such as "sk-proj-" or "sk-ant-" (at most 8 chars). */
  keyPrefix?: string;
  /** sha256 fingerprint of the full credential, hex, truncated. Never the credential itself. */
  keyHash?: string;
}

/**
 * The API an exchange speaks; decides both parsers (decode/providers/index.ts). The OpenAI-style and
 * Anthropic routes are recognised by path whatever the provider; the rest are providers' own APIs.
 */
export type ApiKind =
  | "openai-chat"
  | "openai-completion"
  | "openai-responses"
  | "openai-embeddings"
  | "anthropic-messages"
  | "gemini"
  | "bedrock"
  | "cohere"
  | "ollama";

export interface ParsedAiRequest {
  /** Provider id from the bundle (openai, anthropic, groq, ...). */
  provider: string;
  apiFormat: string;
  /** The API the request was read as; its response is read as the same. Absent: status only. */
  api?: ApiKind;
  /** https://host/path (no query secrets). */
  endpoint: string;
  requestType: RequestType;
  model?: string;
  streaming: boolean;
  messages: AiMessage[];
  system?: string;
  tools: AiToolDefinition[];
  toolChoice?: string;
  parameters: {
    temperature?: number;
    top_p?: number;
    max_tokens?: number;
    frequency_penalty?: number;
    presence_penalty?: number;
    stop?: string[];
  };
  auth: AiAuth;
  /** Embedding inputs count, if an embedding request. */
  inputCount?: number;
  /** Extended thinking / reasoning asked for (Anthropic `thinking`, OpenAI `reasoning_effort` / `reasoning.effort`). */
  thinking?: { enabled: boolean; budgetTokens?: number; effort?: string };
  /** Why the body could not be read whole (malformed or truncated JSON); fields hold what could be salvaged. */
  parseError?: string;
}

export interface ParsedAiResponse {
  statusCode: number;
  success: boolean;
  error?: { type?: string; message?: string; code?: string };
  providerRequestId?: string;
  model?: string;
  /** Assistant text (streamed deltas reassembled). */
  content?: string;
  /** Reasoning / thinking text, when the provider returns it. */
  thinking?: string;
  toolCalls: AiToolCall[];
  finishReason?: FinishReason;
  /** The provider's own finish/stop reason string. */
  rawFinishReason?: string;
  usage?: AiUsage;
  /** Arrival time of the first content-bearing chunk (streaming) for time-to-first-token. */
  firstTokenTs?: number;
  /** Stream ended before its terminal event, or body was cut by a limit. */
  incomplete?: boolean;
  /** Embedding dimensions, if known. */
  dimensions?: number;
  /** Why (part of) the body could not be read: malformed JSON, undecodable stream events. */
  parseError?: string;
}
