// agent.tool_result events: a tool's output as the agent hands it back to the model in its next request
// (OpenAI `tool` messages and Responses function_call_output, Anthropic tool_result blocks, Gemini
// functionResponse, Bedrock toolResult, Cohere and Ollama tool messages: all "tool" messages once parsed).
// Pure like build.ts; which agent.tool_call a result answers is found by the caller (the sensor remembers
// recent calls) and passed in.
import type { AiMessage } from "../decode/providers/types.ts";
import { attribution, contentSource, envelope, type ConnContext } from "./build.ts";
import { contentHash } from "./hash.ts";
import { stableEventId } from "./ids.ts";
import type { AgentToolResultEvent, OispEvent } from "./schema.ts";

/** The agent.tool_call a result answers, as the sensor remembered it. */
export interface LinkedToolCall {
  eventId: string;
  /** The provider's call id, when the call had one (Gemini's often do not). */
  callId?: string;
  name?: string;
  /** Epoch ms of the tool_call event (the end of the response that carried it). */
  tsMs: number;
  /** How the link was made: by the call id, or (no id on either side) by the tool's name. */
  by: "call_id" | "tool_name";
}

/**
 * The tool results a request adds to the conversation: the tool messages after its last assistant
 * message. Earlier ones are history the client re-sends every turn and were reported when new.
 */
export function freshToolResults(messages: readonly AiMessage[]): Array<{ message: AiMessage; index: number }> {
  let lastAssistant = -1;
  messages.forEach((m, i) => {
    if (m.role === "assistant") lastAssistant = i;
  });
  const out: Array<{ message: AiMessage; index: number }> = [];
  for (let i = lastAssistant + 1; i < messages.length; i++) if (messages[i]!.role === "tool") out.push({ message: messages[i]!, index: i });
  return out;
}

/**
 * One agent.tool_result for a tool message of `requestEvent`'s request, or undefined when it can be tied
 * to no call at all (OISP requires a call_id). call_id is the provider's id, else the linked call's event id.
 */
export function buildToolResult(
  ctx: ConnContext,
  requestEvent: OispEvent,
  requestStartMs: number,
  result: { message: AiMessage; index: number },
  link: LinkedToolCall | undefined,
): AgentToolResultEvent | undefined {
  const { message, index } = result;
  const callId = message.toolCallId ?? link?.callId ?? link?.eventId;
  if (callId === undefined) return undefined;
  const name = link?.name ?? message.name;
  const text = message.content ?? "";
  const data: AgentToolResultEvent["data"] = {
    call_id: callId,
    ...(name !== undefined && { tool: { name, type: "other" as const } }),
    result: text,
    result_hash: contentHash(text),
    result_size_bytes: Buffer.byteLength(text),
  };
  // Only when the agent said so: most APIs carry no outcome with a tool's output.
  if (message.isError !== undefined) data.success = !message.isError;
  if (message.isError) data.error = { type: "tool_error" };
  // What a passive observer can measure: from the call leaving the model to its result going back. It
  // includes the agent's own time around the tool, so it is an upper bound of the tool's run time.
  if (link && requestStartMs >= link.tsMs) data.duration_ms = Math.round(requestStartMs - link.tsMs);

  const reasons = ["tool_result_in_request", link ? `linked_by_${link.by}` : "call_not_observed"];
  const event: AgentToolResultEvent = {
    ...envelope(ctx, stableEventId(requestStartMs, `${requestEvent.event_id}/toolres/${index}`), requestEvent.ts, {
      level: link ? "high" : "medium",
      completeness: "full",
      reasons,
      ...attribution(ctx),
      content_source: contentSource(ctx),
      ai_detection_method: requestEvent.confidence.ai_detection_method ?? "known_endpoint",
    }),
    event_type: "agent.tool_result",
    data,
    related_events: [
      ...(link ? [{ event_id: link.eventId, relationship: "caused_by" as const }] : []),
      { event_id: requestEvent.event_id, relationship: "related" as const },
    ],
  };
  event.attrs = { ...event.attrs, message_index: index, request_id: requestEvent.event_id };
  return event;
}
