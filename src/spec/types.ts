// What the endpoint matcher tells the rest of the sensor about a host. Plain data, shared by the
// capture side (intercept or not) and the decoders (which provider parser to use).

/** Wire format of a provider's API, from the bundle's `api_format`. */
export type ApiFormat = "openai" | "anthropic" | "google" | "bedrock" | "cohere" | "ollama";

export interface EndpointMatch {
  /** Provider id from the bundle: "openai", "anthropic", "groq", "azure_openai", "ollama", ... */
  provider: string;
  apiFormat: ApiFormat;
  /** The hostname that matched, lower-case, without port. */
  host: string;
}
