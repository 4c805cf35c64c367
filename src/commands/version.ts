import bundle from "../../spec/bundle.json" with { type: "json" };
import { COMMIT, VERSION } from "../version.ts";

export function versionLine(): string {
  const spec = bundle as { bundle_version?: string; generated_at?: string };
  const date = spec.generated_at?.slice(0, 10) ?? "unknown";
  return `oisp ${VERSION} (commit ${COMMIT}, spec bundle ${spec.bundle_version ?? "?"} of ${date}, ${process.platform}-${process.arch})`;
}
