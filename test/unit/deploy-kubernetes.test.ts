// deploy/kubernetes: every manifest validated against the Kubernetes OpenAPI schemas (kubernetes-models),
// the config in the ConfigMaps accepted by the product's own parser, and the DaemonSet wired to the image
// as build.ts makes it (binary path, tag, data directory, config path, probe).
import { describe, expect, test } from "bun:test";
import fs from "node:fs";
import path from "node:path";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import pkg from "../../package.json" with { type: "json" };
import { IMAGE_BINARY, IMAGE_DATA_DIR, IMAGE_NAME } from "../../packaging/oci-image.ts";
import { configValuesFromToml } from "../../src/commands/config-file.ts";

const dir = path.resolve(import.meta.dir, "../../deploy/kubernetes");
const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  "apps/v1/DaemonSet": DaemonSet,
  "apps/v1/Deployment": Deployment,
  "v1/ConfigMap": ConfigMap,
  "v1/Namespace": Namespace,
  "v1/Service": Service,
};

/** Every manifest (not kustomization.yaml) under deploy/kubernetes, one entry per YAML document. */
function manifests(): { file: string; doc: any }[] {
  const out: { file: string; doc: any }[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".yaml") && name !== "kustomization.yaml") {
        const parsed = Bun.YAML.parse(fs.readFileSync(p, "utf8"));
        for (const doc of Array.isArray(parsed) ? parsed : [parsed]) out.push({ file: path.relative(dir, p), doc });
      }
    }
  };
  walk(dir);
  return out;
}

function validate(doc: any): string | undefined {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!Model) return `no schema for ${doc.apiVersion} ${doc.kind}`;
  try {
    new Model(doc).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const daemonSet = () => Bun.YAML.parse(fs.readFileSync(path.join(dir, "daemonset.yaml"), "utf8")) as any;

describe("manifests", () => {
  test("every document validates against the Kubernetes OpenAPI schema", () => {
    const all = manifests();
    expect(all.map((m) => `${m.file} ${m.doc.kind}`)).toEqual([
      "configmap.yaml ConfigMap",
      "daemonset.yaml DaemonSet",
      "examples/otel-collector/collector.yaml ConfigMap",
      "examples/otel-collector/collector.yaml Deployment",
      "examples/otel-collector/collector.yaml Service",
      "examples/otel-collector/oisp-config.yaml ConfigMap",
      "namespace.yaml Namespace",
    ]);
    expect(all.map((m) => [m.file, m.doc.kind, validate(m.doc)]).filter(([, , err]) => err)).toEqual([]);
  });

  test("the validation catches mistakes (a wrong type, a missing required field)", () => {
    const wrongType = daemonSet();
    wrongType.spec.template.spec.hostPID = "yes";
    expect(validate(wrongType)).toContain("hostPID must be boolean");
    const unnamed = daemonSet();
    delete unnamed.spec.template.spec.containers[0].name;
    expect(validate(unnamed)).toContain("containers/0 must have required property name");
  });

  test("kustomizations list files that exist", () => {
    for (const k of ["kustomization.yaml", "examples/otel-collector/kustomization.yaml"]) {
      const doc = Bun.YAML.parse(fs.readFileSync(path.join(dir, k), "utf8")) as any;
      const base = path.dirname(path.join(dir, k));
      for (const r of [...doc.resources, ...(doc.patches ?? []).map((p: any) => p.path)]) expect(fs.existsSync(path.join(base, r))).toBe(true);
    }
  });

  test("the ConfigMaps' config.toml is accepted by oisp's parser; the example exports to the collector Service", () => {
    const toml = (file: string) => (Bun.YAML.parse(fs.readFileSync(path.join(dir, file), "utf8")) as any).data["config.toml"] as string;
    const base = configValuesFromToml(toml("configmap.yaml"), "configmap");
    expect(base).toMatchObject({ redaction: "safe", "export-spool-mb": "256" });
    expect(base.export).toBeUndefined(); // nothing leaves the node until an exporter is configured
    const ex = configValuesFromToml(toml("examples/otel-collector/oisp-config.yaml"), "example");
    expect(ex).toMatchObject({ export: ["otlp"], "otlp-endpoint": "http://otel-collector.oisp.svc:4318" });
    const svc = manifests().find((m) => m.doc.kind === "Service")!.doc;
    expect(`http://${svc.metadata.name}.${svc.metadata.namespace}.svc:${svc.spec.ports[0].port}`).toBe(ex["otlp-endpoint"]!);
  });
});

describe("the DaemonSet and the image", () => {
  const ds = daemonSet();
  const pod = ds.spec.template.spec;
  const c = pod.containers[0];

  test("runs the image build.ts makes, its binary, eBPF capture with the mounted config", () => {
    expect(c.image).toBe(`${IMAGE_NAME}:${pkg.version}`);
    expect(c.command).toEqual([IMAGE_BINARY]);
    expect(c.args).toEqual(["up", "--capture", "ebpf", "--config", "/etc/oisp/config.toml"]);
    const mounts = Object.fromEntries(c.volumeMounts.map((m: any) => [m.mountPath, m.name]));
    expect(mounts["/etc/oisp"]).toBe("config");
    expect(mounts[IMAGE_DATA_DIR]).toBe("data");
    expect(c.env).toContainEqual({ name: "OISP_HOME", value: IMAGE_DATA_DIR });
    const vols = Object.fromEntries(pod.volumes.map((v: any) => [v.name, v]));
    for (const m of c.volumeMounts) expect(vols[m.name]).toBeDefined();
    expect(vols.data.hostPath.path).toBe("/var/lib/oisp"); // spools survive pod deletion
  });

  test("host PID, read-only root, only the eBPF capabilities", () => {
    expect(pod.hostPID).toBe(true);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.privileged).toBeUndefined();
    expect(c.securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"] });
    expect(c.resources.requests.memory).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
  });

  test("probes run `oisp status --json` (exit 0 running, 3 not)", () => {
    for (const probe of [c.startupProbe, c.livenessProbe, c.readinessProbe]) expect(probe.exec.command).toEqual([IMAGE_BINARY, "status", "--json"]);
  });
});
