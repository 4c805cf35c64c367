// The provider a person reads: OISP's provider enum has no xAI, DeepSeek, Perplexity, OpenRouter and many
// more, so their events say provider.name "other" (the schema's value, kept in the event). Every view that
// shows or groups by provider (store column → dashboard and TUI, analyze, OTLP export) goes through here,
// so such calls appear under the bundle's provider id instead of one "other" heap.
import { bundle } from "./bundle.ts";
import { isObj } from "../events/read.ts";

/**
 * The provider to show and group by: the OISP name, except that "other" (or no name) becomes the bundle
 * provider id the sensor recorded (attrs.provider_id) when the bundle knows that id.
 */
export function providerLabel(oispName: unknown, bundleId: unknown): string | undefined {
  const name = typeof oispName === "string" && oispName !== "" ? oispName : undefined;
  if ((name === undefined || name === "other") && typeof bundleId === "string" && Object.hasOwn(bundle.providers, bundleId)) return bundleId;
  return name;
}

/** The provider label of an OISP event (provider.name in data, provider_id in attrs). */
export function eventProviderLabel(event: { data?: unknown; attrs?: unknown }): string | undefined {
  const data = isObj(event.data) ? event.data : undefined;
  const p = data?.provider;
  const name = typeof p === "string" ? p : isObj(p) ? p.name : undefined;
  return providerLabel(name, isObj(event.attrs) ? event.attrs.provider_id : undefined);
}

/** The bundle's display name for a provider id ("xai" → "xAI"); the id itself when the bundle has none. */
export function providerDisplayName(id: string): string {
  return Object.hasOwn(bundle.providers, id) ? bundle.providers[id]!.name : id;
}
