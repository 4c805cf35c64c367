// OISP events: schemas, ids, builders, redaction.
export * from "./schema.ts";
export { newEventId, stableEventId } from "./ids.ts";
export { hostInfo, type HostInfo } from "./host.ts";
export { contentHash } from "./hash.ts";
export {
  argumentsObject,
  buildAiRequest,
  buildAiResponse,
  buildNetworkConnect,
  buildToolCalls,
  formatTimestamp,
  oispProviderName,
  type ConnContext,
} from "./build.ts";
export { buildFileWrite, buildProcessExec, type ActivityContext } from "./build-activity.ts";
export { buildToolResult, freshToolResults, type LinkedToolCall } from "./tool-result.ts";
export { conversationIdFrom, conversationKey, type ConversationParts } from "./conversation.ts";
export { maskSecrets, redactEvent, REDACTION_MODES, type RedactionMode, type SecretFinding } from "./redact.ts";
