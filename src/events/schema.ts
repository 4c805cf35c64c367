// OISP v0.1 events as zod schemas: the source of truth for what the sensor emits.
// Field names follow the OISP JSON Schemas exactly (spec/oisp-schema/v0.1). Where OISP leaves an
// object open (common/*: host, process, actor, confidence...) we do too; the envelope and the `data`
// of each event type we emit are closed, so a typo in a builder fails validation instead of shipping.
// Enums carry OISP's full value sets so events from the spec's own examples validate here as well.
import { z } from "zod";

// ---------------------------------------------------------------------------------------------
// Scalars

/** RFC 3339, UTC, exactly microsecond precision: "2025-12-22T14:30:16.345678Z". */
export const Timestamp = z.iso.datetime({ precision: 6 });

/** Non-negative safe integer (counts, ids, ports). */
const Count = z.int().min(0);

/**
 * An integer that may exceed 2^53 (ts_mono is nanoseconds since an epoch in the examples). z.int()
 * insists on safe integers, so check integrality only and say "integer" in the JSON Schema.
 */
const WideInteger = z.number().refine(Number.isInteger, "must be an integer").meta({ type: "integer" });

const StringMap = z.record(z.string(), z.unknown());

// ---------------------------------------------------------------------------------------------
// common/*.schema.json (open objects, as in OISP)

export const HostSchema = z.looseObject({
  hostname: z.string().optional(),
  device_id: z.string().optional(),
  os: z.enum(["linux", "darwin", "windows", "freebsd", "other"]).optional(),
  os_version: z.string().optional(),
  arch: z.enum(["x86_64", "aarch64", "arm", "i686", "other"]).optional(),
  kernel_version: z.string().optional(),
  managed: z.boolean().optional(),
  tags: z.array(z.string()).optional(),
}).meta({ id: "host" });

export const ActorSchema = z.looseObject({
  uid: Count.optional(),
  gid: Count.optional(),
  user: z.string().optional(),
  groups: z.array(z.string()).optional(),
  session_id: z.string().optional(),
  terminal: z.string().optional(),
  is_elevated: z.boolean().optional(),
  is_human: z.boolean().optional(),
}).meta({ id: "actor" });

export const ProcessSchema = z.looseObject({
  pid: Count.optional(),
  ppid: Count.optional(),
  pgid: Count.optional(),
  sid: Count.optional(),
  exe: z.string().optional(),
  name: z.string().optional(),
  cmdline: z.string().optional(),
  cmdline_args: z.array(z.string()).optional(),
  cwd: z.string().optional(),
  bundle_id: z.string().optional(),
  container_id: z.string().optional(),
  cgroup: z.string().optional(),
}).meta({ id: "process" });

export const AppSchema = z.looseObject({
  app_id: z.string().optional(),
  name: z.string().optional(),
  vendor: z.string().optional(),
  version: z.string().optional(),
  bundle_id: z.string().optional(),
  category: z.enum(["dev_tools", "chat", "productivity", "creative", "browser", "cli", "server", "other"]).optional(),
  tier: z.enum(["unknown", "identified", "profiled"]).optional(),
  is_ai_app: z.boolean().optional(),
  is_ai_host: z.boolean().optional(),
  type: z.enum(["native", "web", "extension", "cli", "server"]).optional(),
}).meta({ id: "app" });

export const WebContextSchema = z.looseObject({
  origin: z.string().optional(),
  referer: z.string().optional(),
  user_agent: z.string().optional(),
  web_app_id: z.string().optional(),
  web_app_name: z.string().optional(),
  web_app_type: z.enum(["direct", "embedded"]).optional(),
}).meta({ id: "web_context" });

export const ConfidenceLevel = z.enum(["high", "medium", "low", "inferred"]);
export const Completeness = z.enum(["full", "partial", "metadata_only", "redacted", "sampled", "vendor_reported"]);

export const ConfidenceSchema = z.looseObject({
  level: ConfidenceLevel,
  completeness: Completeness,
  reasons: z.array(z.string()).optional(),
  missing: z.array(z.string()).optional(),
  limitations: z.array(z.string()).optional(),
  process_attribution: z.enum(["direct", "socket_inode", "cgroup", "timing_correlation", "heuristic", "unknown"]).optional(),
  content_source: z
    .enum(["plaintext_capture", "tls_boundary", "mitm_decryption", "vendor_api", "log_extraction", "inference", "none"])
    .optional(),
  ai_detection_method: z
    .enum([
      "known_endpoint",
      "payload_inspection",
      "header_fingerprint",
      "content_pattern",
      "model_string_match",
      "heuristic",
      "vendor_reported",
    ])
    .optional(),
  sample_rate: z.number().min(0).max(1).optional(),
  redaction_applied: z.boolean().optional(),
  redaction_profile: z.string().optional(),
}).meta({ id: "confidence" });

export const CaptureMethod = z.enum([
  "ebpf_tracepoint",
  "ebpf_kprobe",
  "ebpf_uprobe",
  "dtrace",
  "etw",
  "syscall_intercept",
  "tls_boundary",
  "mitm_proxy",
  "browser_extension",
  "sdk_instrumentation",
  "vendor_api",
  "vendor_audit_log",
  "log_parsing",
  "endpoint_security",
  "network_extension",
  "other",
]);

export const SourceSchema = z.strictObject({
  collector: z.string(),
  collector_version: z.string().optional(),
  capture_method: CaptureMethod.optional(),
  capture_point: z.string().optional(),
  sensor_host: z.string().optional(),
}).meta({ id: "source" });

export const RelatedEventSchema = z.strictObject({
  event_id: z.string(),
  relationship: z.enum(["parent", "child", "caused_by", "causes", "related"]),
}).meta({ id: "related_event" });

export const TraceContextSchema = z.strictObject({
  trace_id: z.string().regex(/^[a-f0-9]{32}$/).optional(),
  span_id: z.string().regex(/^[a-f0-9]{16}$/).optional(),
  trace_flags: z.int().min(0).max(255).optional(),
}).meta({ id: "trace_context" });

// ---------------------------------------------------------------------------------------------
// events/ai.schema.json

export const RedactionFindingSchema = z.strictObject({ type: z.string().optional(), count: Count.optional() });

/** `{ "$redacted": {...} }`: stands in for content that was removed. */
export const RedactedContentSchema = z.strictObject({
  $redacted: z.strictObject({
    reason: z.string(),
    detector: z.string().optional(),
    original_length: Count.optional(),
    hash: z.string().optional(),
    preview: z.string().max(100).optional(),
    redaction_profile: z.string().optional(),
    findings: z.array(RedactionFindingSchema).optional(),
  }),
}).meta({ id: "redacted_content" });

export const ProviderName = z.enum([
  "openai",
  "anthropic",
  "google",
  "azure_openai",
  "aws_bedrock",
  "cohere",
  "mistral",
  "groq",
  "together",
  "fireworks",
  "replicate",
  "huggingface",
  "ollama",
  "lmstudio",
  "vllm",
  "other",
]);

export const ProviderInfoSchema = z.strictObject({
  name: ProviderName.optional(),
  endpoint: z.string().optional(),
  region: z.string().optional(),
  organization_id: z.string().optional(),
  project_id: z.string().optional(),
}).meta({ id: "provider_info" });

export const ModelInfoSchema = z.strictObject({
  id: z.string().optional(),
  name: z.string().optional(),
  family: z.string().optional(),
  version: z.string().optional(),
  capabilities: z
    .strictObject({
      vision: z.boolean().optional(),
      function_calling: z.boolean().optional(),
      streaming: z.boolean().optional(),
      json_mode: z.boolean().optional(),
      system_messages: z.boolean().optional(),
      reasoning: z.boolean().optional(),
      web_search: z.boolean().optional(),
      code_execution: z.boolean().optional(),
    })
    .optional(),
  context_window: z.int().optional(),
  max_output_tokens: z.int().optional(),
}).meta({ id: "model_info" });

export const AuthInfoSchema = z.strictObject({
  type: z.enum(["api_key", "oauth", "service_account", "session", "none", "unknown"]).optional(),
  account_type: z.enum(["personal", "corporate", "shared", "unknown"]).optional(),
  /** Never more than 8 characters: enough to tell key kinds apart, never enough to use. */
  key_prefix: z.string().max(8).optional(),
  key_hash: z.string().optional(),
}).meta({ id: "auth_info" });

export const MessageRole = z.enum(["system", "user", "assistant", "tool", "function"]);

export const MessageSchema = z.strictObject({
  role: MessageRole,
  content: z.union([z.string(), RedactedContentSchema]).optional(),
  content_hash: z.string().optional(),
  content_length: z.int().optional(),
  has_images: z.boolean().optional(),
  image_count: z.int().optional(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
}).meta({ id: "message" });

export const ToolDefinitionSchema = z.strictObject({
  name: z.string().optional(),
  type: z.enum(["function", "code_interpreter", "file_search", "computer_use", "other"]).optional(),
  description: z.string().optional(),
}).meta({ id: "tool_definition" });

/**
 * A tool call in ai.response. OISP says oneOf [string, object, redacted]; a redacted marker is also an
 * object, so we state it as anyOf (see spec/README.md) — zod unions are anyOf already.
 */
export const AiToolCallSchema = z.strictObject({
  id: z.string().optional(),
  name: z.string().optional(),
  type: z.string().optional(),
  arguments: z.union([z.string(), RedactedContentSchema, StringMap]).optional(),
  arguments_hash: z.string().optional(),
}).meta({ id: "ai_tool_call" });

export const UsageSchema = z.strictObject({
  prompt_tokens: z.int().optional(),
  completion_tokens: z.int().optional(),
  total_tokens: z.int().optional(),
  cached_tokens: z.int().optional(),
  reasoning_tokens: z.int().optional(),
  input_cost_usd: z.number().optional(),
  output_cost_usd: z.number().optional(),
  total_cost_usd: z.number().optional(),
}).meta({ id: "usage" });

export const FinishReason = z.enum(["stop", "length", "tool_calls", "content_filter", "error", "other"]);
export const RequestType = z.enum(["chat", "completion", "embedding", "image", "audio", "moderation", "other"]);

export const AiRequestDataSchema = z.strictObject({
  request_id: z.string().optional(),
  conversation_id: z.string().optional(),
  provider: ProviderInfoSchema.optional(),
  model: ModelInfoSchema.optional(),
  auth: AuthInfoSchema.optional(),
  request_type: RequestType.optional(),
  streaming: z.boolean().optional(),
  messages: z.array(MessageSchema).optional(),
  messages_count: z.int().optional(),
  has_system_prompt: z.boolean().optional(),
  system_prompt_hash: z.string().optional(),
  tools: z.array(ToolDefinitionSchema).optional(),
  tools_count: z.int().optional(),
  tool_choice: z.string().optional(),
  parameters: z
    .strictObject({
      temperature: z.number().optional(),
      top_p: z.number().optional(),
      max_tokens: z.int().optional(),
      frequency_penalty: z.number().optional(),
      presence_penalty: z.number().optional(),
      stop: z.array(z.string()).optional(),
    })
    .optional(),
  has_rag_context: z.boolean().optional(),
  has_images: z.boolean().optional(),
  image_count: z.int().optional(),
  estimated_tokens: z.int().optional(),
}).meta({ id: "ai.request" });

export const ChoiceSchema = z.strictObject({
  index: z.int().optional(),
  message: MessageSchema.optional(),
  finish_reason: FinishReason.optional(),
}).meta({ id: "choice" });

export const AiResponseDataSchema = z.strictObject({
  request_id: z.string().optional(),
  conversation_id: z.string().optional(),
  provider_request_id: z.string().optional(),
  provider: ProviderInfoSchema.optional(),
  model: ModelInfoSchema.optional(),
  status_code: z.int().optional(),
  success: z.boolean().optional(),
  error: z.strictObject({ type: z.string().optional(), message: z.string().optional(), code: z.string().optional() }).optional(),
  choices: z.array(ChoiceSchema).optional(),
  tool_calls: z.array(AiToolCallSchema).optional(),
  tool_calls_count: z.int().optional(),
  usage: UsageSchema.optional(),
  latency_ms: z.int().optional(),
  time_to_first_token_ms: z.int().optional(),
  was_cached: z.boolean().optional(),
  finish_reason: FinishReason.optional(),
}).meta({ id: "ai.response" });

// ---------------------------------------------------------------------------------------------
// events/agent.schema.json

export const AgentInfoSchema = z.strictObject({
  name: z.string().optional(),
  type: z.enum(["ide", "cli", "browser", "server", "autonomous", "workflow", "other"]).optional(),
  version: z.string().optional(),
  framework: z.string().optional(),
  session_id: z.string().optional(),
  task_id: z.string().optional(),
}).meta({ id: "agent_info" });

export const AgentToolType = z.enum([
  "file_read",
  "file_write",
  "file_edit",
  "terminal",
  "shell",
  "browser",
  "http",
  "database",
  "code_execution",
  "search",
  "retrieval",
  "api_call",
  "computer_use",
  "other",
]);

export const ToolInfoSchema = z.strictObject({
  name: z.string().optional(),
  type: AgentToolType.optional(),
  provider: z.string().optional(),
  server: z.string().optional(),
  description: z.string().optional(),
}).meta({ id: "tool_info" });

export const AgentToolCallDataSchema = z.strictObject({
  agent: AgentInfoSchema.optional(),
  tool: ToolInfoSchema,
  call_id: z.string().optional(),
  triggered_by: z.enum(["llm_decision", "user_approval", "automatic", "workflow", "retry"]).optional(),
  /** Always an object: parsed JSON arguments, `{ _raw: text }` when not JSON, or a `$redacted` marker. */
  arguments: StringMap.optional(),
  arguments_hash: z.string().optional(),
  requires_approval: z.boolean().optional(),
  approved: z.boolean().optional(),
  approver: z.string().optional(),
  risk_level: z.enum(["low", "medium", "high", "critical"]).optional(),
  risk_reasons: z.array(z.string()).optional(),
}).meta({ id: "agent.tool_call" });

export const AgentToolResultDataSchema = z.strictObject({
  agent: AgentInfoSchema.optional(),
  tool: ToolInfoSchema.optional(),
  call_id: z.string(),
  success: z.boolean().optional(),
  error: z.strictObject({ type: z.string().optional(), message: z.string().optional() }).optional(),
  result: z.union([z.string(), RedactedContentSchema, StringMap, z.array(z.unknown())]).optional(),
  result_hash: z.string().optional(),
  result_size_bytes: z.int().optional(),
  duration_ms: z.int().optional(),
  side_effects: z
    .array(
      z.strictObject({
        type: z
          .enum(["file_created", "file_modified", "file_deleted", "process_spawned", "network_request", "database_write", "other"])
          .optional(),
        target: z.string().optional(),
      }),
    )
    .optional(),
}).meta({ id: "agent.tool_result" });

// ---------------------------------------------------------------------------------------------
// events/network.schema.json

export const NetworkEndpointSchema = z.strictObject({
  ip: z.string().optional(),
  port: z.int().min(0).max(65535).optional(),
  domain: z.string().optional(),
  is_private: z.boolean().optional(),
  geo: z
    .strictObject({
      country: z.string().optional(),
      region: z.string().optional(),
      city: z.string().optional(),
      asn: z.int().optional(),
      org: z.string().optional(),
    })
    .optional(),
}).meta({ id: "network_endpoint" });

export const TlsInfoSchema = z.strictObject({
  version: z.string().optional(),
  cipher_suite: z.string().optional(),
  sni: z.string().optional(),
  alpn: z.string().optional(),
  certificate: z
    .strictObject({
      subject: z.string().optional(),
      issuer: z.string().optional(),
      not_before: z.iso.datetime({ offset: true }).optional(),
      not_after: z.iso.datetime({ offset: true }).optional(),
      fingerprint_sha256: z.string().optional(),
      san: z.array(z.string()).optional(),
    })
    .optional(),
  ja3_fingerprint: z.string().optional(),
  ja3s_fingerprint: z.string().optional(),
}).meta({ id: "tls_info" });

export const NetworkConnectDataSchema = z.strictObject({
  dest: NetworkEndpointSchema,
  src: NetworkEndpointSchema.optional(),
  protocol: z.enum(["tcp", "udp", "unix", "other"]).optional(),
  success: z.boolean().optional(),
  error: z.string().optional(),
  latency_ms: z.number().optional(),
  tls: TlsInfoSchema.optional(),
}).meta({ id: "network.connect" });

// ---------------------------------------------------------------------------------------------
// events/process.schema.json ($defs/exec) and events/file.schema.json ($defs/write, $defs/file_info)

export const ProcessExecDataSchema = z.strictObject({
  exe: z.string(),
  args: z.array(z.string()).optional(),
  cwd: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  interpreter: z.string().optional(),
  script_path: z.string().optional(),
  is_shell: z.boolean().optional(),
  is_script: z.boolean().optional(),
  is_interactive: z.boolean().optional(),
}).meta({ id: "process.exec" });

export const FileInfoSchema = z.strictObject({
  path: z.string().optional(),
  name: z.string().optional(),
  extension: z.string().optional(),
  size: Count.optional(),
  inode: z.int().optional(),
  mode: z.string().optional(),
  uid: z.int().optional(),
  gid: z.int().optional(),
  mtime: z.iso.datetime({ offset: true }).optional(),
  ctime: z.iso.datetime({ offset: true }).optional(),
  is_directory: z.boolean().optional(),
  is_symlink: z.boolean().optional(),
  symlink_target: z.string().optional(),
  hash: z.strictObject({ sha256: z.string().optional(), sha1: z.string().optional(), md5: z.string().optional() }).optional(),
}).meta({ id: "file_info" });

export const FileWriteDataSchema = z.strictObject({
  path: z.string(),
  bytes_written: Count.optional(),
  offset: z.int().optional(),
  truncated: z.boolean().optional(),
  created: z.boolean().optional(),
  file: FileInfoSchema.optional(),
  content_hash: z.string().optional(),
  content_preview: z.string().max(256).optional(),
  detected_type: z.string().optional(),
}).meta({ id: "file.write" });

// ---------------------------------------------------------------------------------------------
// envelope.schema.json, one closed variant per event type we emit

const envelopeShape = {
  oisp_version: z.literal("0.1"),
  event_id: z.string().min(1),
  ts: Timestamp,
  ts_mono: WideInteger.optional(),
  host: HostSchema.optional(),
  actor: ActorSchema.optional(),
  process: ProcessSchema.optional(),
  app: AppSchema.optional(),
  web_context: WebContextSchema.optional(),
  source: SourceSchema,
  confidence: ConfidenceSchema,
  attrs: StringMap.optional(),
  ext: StringMap.optional(),
  related_events: z.array(RelatedEventSchema).optional(),
  trace_context: TraceContextSchema.optional(),
};

function eventVariant<T extends string, D extends z.ZodType>(eventType: T, data: D) {
  return z.strictObject({ ...envelopeShape, event_type: z.literal(eventType), data });
}

export const AiRequestEventSchema = eventVariant("ai.request", AiRequestDataSchema);
export const AiResponseEventSchema = eventVariant("ai.response", AiResponseDataSchema);
export const AgentToolCallEventSchema = eventVariant("agent.tool_call", AgentToolCallDataSchema);
export const AgentToolResultEventSchema = eventVariant("agent.tool_result", AgentToolResultDataSchema);
export const NetworkConnectEventSchema = eventVariant("network.connect", NetworkConnectDataSchema);
export const ProcessExecEventSchema = eventVariant("process.exec", ProcessExecDataSchema);
export const FileWriteEventSchema = eventVariant("file.write", FileWriteDataSchema);

export const OispEventSchema = z
  .discriminatedUnion("event_type", [
    AiRequestEventSchema,
    AiResponseEventSchema,
    AgentToolCallEventSchema,
    AgentToolResultEventSchema,
    NetworkConnectEventSchema,
    ProcessExecEventSchema,
    FileWriteEventSchema,
  ])
  .meta({
    title: "OISP v0.1 event (as emitted by oisp-sensor)",
    description:
      "Generated from src/events/schema.ts by scripts/gen-event-schema.ts. A closed subset of the OISP v0.1 envelope + event schemas.",
  });

export type OispEvent = z.infer<typeof OispEventSchema>;
export type OispEventType = OispEvent["event_type"];
export type AiRequestEvent = z.infer<typeof AiRequestEventSchema>;
export type AiResponseEvent = z.infer<typeof AiResponseEventSchema>;
export type AgentToolCallEvent = z.infer<typeof AgentToolCallEventSchema>;
export type AgentToolResultEvent = z.infer<typeof AgentToolResultEventSchema>;
export type NetworkConnectEvent = z.infer<typeof NetworkConnectEventSchema>;
export type ProcessExecEvent = z.infer<typeof ProcessExecEventSchema>;
export type FileWriteEvent = z.infer<typeof FileWriteEventSchema>;
export type RedactedContent = z.infer<typeof RedactedContentSchema>;
export type Confidence = z.infer<typeof ConfidenceSchema>;
export type OispProviderName = z.infer<typeof ProviderName>;

export const EMITTED_EVENT_TYPES: readonly OispEventType[] = [
  "ai.request",
  "ai.response",
  "agent.tool_call",
  "agent.tool_result",
  "network.connect",
  "process.exec",
  "file.write",
];

export type EventValidation = { ok: true; event: OispEvent } | { ok: false; error: string };

/** Checks an event against the schema; never throws. `error` lists every problem with its path. */
export function validateEvent(e: unknown): EventValidation {
  const result = OispEventSchema.safeParse(e);
  if (result.success) return { ok: true, event: result.data };
  const type = typeof e === "object" && e !== null ? (e as { event_type?: unknown }).event_type : undefined;
  return { ok: false, error: `invalid OISP event${typeof type === "string" ? ` (${type})` : ""}:\n${z.prettifyError(result.error)}` };
}
