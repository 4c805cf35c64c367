// The winget multi-file manifest for OISP.Sensor (schema 1.10.0): version, installer and defaultLocale
// files, as winget-pkgs lays them out (manifests/o/OISP/Sensor/<version>/). The installer's SHA256 is
// taken from the built setup exe; the URL is where the release publishes it.
import fs from "node:fs";
import path from "node:path";

export const PACKAGE_IDENTIFIER = "OISP.Sensor";
export const MANIFEST_VERSION = "1.10.0";
/** Name of the uninstall registry key the NSIS installer writes (winget's ProductCode for nullsoft). */
export const PRODUCT_CODE = "OISP Sensor";

export interface WingetInput {
  version: string;
  installerUrl: string;
  installerSha256: string;
  releaseDate?: string; // YYYY-MM-DD
  publisher?: string;
}

export type Manifest = Record<string, unknown>;

export function wingetManifests(i: WingetInput): { version: Manifest; installer: Manifest; defaultLocale: Manifest } {
  const common = { PackageIdentifier: PACKAGE_IDENTIFIER, PackageVersion: i.version };
  const publisher = i.publisher ?? "OISP";
  return {
    version: { ...common, DefaultLocale: "en-US", ManifestType: "version", ManifestVersion: MANIFEST_VERSION },
    installer: {
      ...common,
      InstallerType: "nullsoft",
      Scope: "machine",
      InstallModes: ["interactive", "silent", "silentWithProgress"],
      InstallerSwitches: { Silent: "/S", SilentWithProgress: "/S" },
      UpgradeBehavior: "install",
      ElevationRequirement: "elevatesSelf",
      Commands: ["oisp"],
      ProductCode: PRODUCT_CODE,
      ...(i.releaseDate ? { ReleaseDate: i.releaseDate } : {}),
      AppsAndFeaturesEntries: [{ DisplayName: "OISP Sensor", Publisher: publisher, DisplayVersion: i.version, ProductCode: PRODUCT_CODE }],
      Installers: [{ Architecture: "x64", InstallerUrl: i.installerUrl, InstallerSha256: i.installerSha256.toUpperCase() }],
      ManifestType: "installer",
      ManifestVersion: MANIFEST_VERSION,
    },
    defaultLocale: {
      ...common,
      PackageLocale: "en-US",
      Publisher: publisher,
      PackageName: "OISP Sensor",
      License: "Apache-2.0",
      ShortDescription: "See every AI API call made on this machine: process, provider, model, prompt, answer, tool calls, tokens, cost.",
      Description:
        "OISP Sensor captures the AI API calls made by the programs on a machine through a local TLS-intercepting proxy " +
        "(WinDivert redirection on Windows), decodes them into OISP events, stores them locally in SQLite and shows them " +
        "in a dashboard on 127.0.0.1. Nothing leaves the machine unless an exporter is configured.",
      Moniker: "oisp",
      Tags: ["ai", "llm", "observability", "openai", "anthropic", "proxy", "security"],
      ManifestType: "defaultLocale",
      ManifestVersion: MANIFEST_VERSION,
    },
  };
}

/** YAML for a manifest: flat maps, lists of scalars and lists of flat maps are all it needs. Strings are
 *  always double-quoted (JSON escapes are valid YAML), so nothing is read back as a number or a bool. */
export function toYaml(value: Manifest, schemaName: string): string {
  const scalar = (v: unknown) => (typeof v === "string" ? JSON.stringify(v) : String(v));
  const lines = [
    "# Created by OISP's build.ts",
    `# yaml-language-server: $schema=https://aka.ms/winget-manifest.${schemaName}.${MANIFEST_VERSION}.schema.json`,
    "",
  ];
  const emit = (obj: Record<string, unknown>, indent: string, firstPrefix?: string) => {
    let first = true;
    for (const [k, v] of Object.entries(obj)) {
      const lead = first && firstPrefix !== undefined ? firstPrefix : indent;
      first = false;
      if (Array.isArray(v)) {
        lines.push(`${lead}${k}:`);
        for (const item of v) {
          if (item && typeof item === "object") emit(item as Record<string, unknown>, `${indent}  `, `${indent}- `);
          else lines.push(`${indent}- ${scalar(item)}`);
        }
      } else if (v && typeof v === "object") {
        lines.push(`${lead}${k}:`);
        emit(v as Record<string, unknown>, `${indent}  `);
      } else {
        lines.push(`${lead}${k}: ${scalar(v)}`);
      }
    }
  };
  emit(value, "");
  return `${lines.join("\n")}\n`;
}

/** Writes the three files under outDir/manifests/o/OISP/Sensor/<version>/ and returns their paths. */
export function writeWingetManifests(outDir: string, input: WingetInput): string[] {
  const m = wingetManifests(input);
  const dir = path.join(outDir, "manifests", "o", "OISP", "Sensor", input.version);
  fs.mkdirSync(dir, { recursive: true });
  const files: [string, Manifest, string][] = [
    [`${PACKAGE_IDENTIFIER}.yaml`, m.version, "version"],
    [`${PACKAGE_IDENTIFIER}.installer.yaml`, m.installer, "installer"],
    [`${PACKAGE_IDENTIFIER}.locale.en-US.yaml`, m.defaultLocale, "defaultLocale"],
  ];
  return files.map(([name, manifest, schema]) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, toYaml(manifest, schema));
    return file;
  });
}
