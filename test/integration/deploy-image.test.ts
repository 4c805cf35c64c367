// The container image from `bun build.ts --image`, run by podman (root in CI; `--runtime runc` because
// crun fails on this kernel's cgroups, ulimits within the hard limits here): loadable, labelled, no shell,
// non-root by default, the same bytes from two builds; then the proxy-mode container with a read-only
// root and host networking proxies a curl on the host to a local fake provider and exports the call to a
// local OTLP receiver, with `oisp status --json` answering as the Kubernetes probe does. Last, the
// DaemonSet's own command and security context (root, host PID, only the BPF capabilities, read-only root)
// capture a curl on the host with eBPF and export it; the test's config limits capture to this test's
// process tree ([ebpf] pids), so no other process's TLS is read.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { imageName } from "../../build.ts";
import { buildOnce, repoRoot } from "../../packaging/build-once.ts";
import { IMAGE_BINARY, IMAGE_NAME, OISP_UID } from "../../packaging/oci-image.ts";
import { fakeProviderHandler, FIXED } from "../support/fake-providers.ts";
import { freePort, waitFor, waitForPort } from "../support/oisp-process.ts";
import { OtlpReceiver } from "../support/otlp-receiver.ts";
import { listenOnRandomLoopback } from "../support/ebpf-harness.ts";
import { startTlsUpstream, type TlsUpstream } from "../support/upstream.ts";

const out = path.join(os.tmpdir(), `oisp-image-${process.pid}`);
const image = `${IMAGE_NAME}:${pkg.version}`;
const CAP_BITS: Record<string, number> = { DAC_READ_SEARCH: 2, SYS_PTRACE: 19, SYS_ADMIN: 21, SYS_RESOURCE: 24, PERFMON: 38, BPF: 39 };
const RUN = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
const made: string[] = [out];
const containers: string[] = [];

/** Async, never spawnSync: the fake provider and the OTLP receiver answer from this process's event loop. */
async function podman(args: string[]) {
  const p = Bun.spawn(["podman", ...args], { stdout: "pipe", stderr: "pipe", timeout: 120_000 });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, out, err };
}

function tempDir(prefix: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

let buildLog = "";
beforeAll(async () => {
  const started = performance.now();
  buildLog = await buildOnce(["--image", "--out", out]);
  console.log(`${buildLog.trim()}\n(build.ts --image: ${((performance.now() - started) / 1000).toFixed(1)} s)`);
  const load = await podman(["load", "-i", path.join(out, imageName(pkg.version))]);
  if (load.code !== 0) throw new Error(`podman load failed:\n${load.out}\n${load.err}`);
}, 400_000);

afterAll(async () => {
  for (const c of containers) await podman(["rm", "-f", c]);
  await podman(["rmi", image]); // each run loads ~120 MB; an untagged copy per run would pile up
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

describe("image", () => {
  test("podman load names it; labels, non-root user, entrypoint, no shell", async () => {
    const inspect = await podman(["image", "inspect", image]);
    expect(inspect.code).toBe(0);
    const [info] = JSON.parse(inspect.out);
    expect(info.Config.Labels).toMatchObject({
      "org.opencontainers.image.version": pkg.version,
      "org.opencontainers.image.licenses": "Apache-2.0",
      "org.opencontainers.image.source": "https://github.com/oisp/oisp-sensor",
    });
    expect(info.Config.Labels["org.opencontainers.image.revision"]).toMatch(/^[0-9a-f]{7,}$|^unknown$/);
    expect(info.Config.User).toBe(`${OISP_UID}:${OISP_UID}`);
    expect(info.Config.Entrypoint).toEqual([IMAGE_BINARY]);
    const shell = await podman(["run", "--rm", ...RUN, "--entrypoint", "/bin/sh", image, "-c", "true"]);
    expect(shell.code).not.toBe(0);
    expect(shell.err).toMatch(/\/bin\/sh.*(no such file|not found)/i);
  });

  test("`oisp --version` runs in the container: the libraries it loads are there", async () => {
    const r = await podman(["run", "--rm", ...RUN, image, "--version"]);
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const host = Bun.spawnSync([path.join(out, "oisp"), "--version"]).stdout.toString();
    expect(r.out).toBe(host);
  });

  test("the same inputs give the same archive bytes", async () => {
    const again = tempDir("oisp-image-again-");
    fs.copyFileSync(path.join(out, "oisp"), path.join(again, "oisp"));
    const p = Bun.spawn([process.execPath, "build.ts", "--image", "--no-compile", "--out", again], { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
    expect(await p.exited).toBe(0);
    const a = fs.readFileSync(path.join(out, imageName(pkg.version)));
    const b = fs.readFileSync(path.join(again, imageName(pkg.version)));
    expect(b.length).toBe(a.length);
    expect(Buffer.compare(a, b)).toBe(0);
  }, 120_000);
});

describe("proxy mode in the container, exporting to an OTLP receiver", () => {
  let upstream: TlsUpstream;
  const receiver = new OtlpReceiver();
  let data: string;
  let proxyPort: number;
  const name = `oisp-proxy-test-${process.pid}`;

  beforeAll(async () => {
    upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
    const conf = tempDir("oisp-image-conf-");
    fs.writeFileSync(path.join(conf, "upstream-ca.pem"), upstream.caPem);
    proxyPort = await freePort();
    fs.writeFileSync(
      path.join(conf, "config.toml"),
      `redaction = "safe"\n[proxy]\nlisten = "127.0.0.1:${proxyPort}"\nupstream_ca = ["upstream-ca.pem"]\n` +
        `[export]\nbatch_size = 1\n[export.otlp]\nendpoint = "${receiver.url}"\nprotocol = "http/protobuf"\n`,
    );
    fs.chmodSync(conf, 0o755);
    // The data directory as a volume owned by the image's user, as the DaemonSet's hostPath is.
    data = tempDir("oisp-image-data-");
    fs.chownSync(data, OISP_UID, OISP_UID);
    const r = await podman([
      "run", "-d", "--name", name, ...RUN, "--network=host", "--read-only", "--tmpfs", "/tmp",
      "-v", `${data}:/var/lib/oisp`, "-v", `${conf}:/etc/oisp:ro`,
      image, "up", "--capture", "proxy", "--config", "/etc/oisp/config.toml", "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`,
    ]);
    if (r.code !== 0) throw new Error(`podman run failed:\n${r.err}`);
    containers.push(name);
    await waitFor(`the container's proxy on ${proxyPort}`, async () => {
      if (JSON.parse((await podman(["inspect", name])).out)[0].State.Running !== true) throw new Error(`container exited:\n${(await podman(["logs", name])).err}`);
      return fs.existsSync(path.join(data, "ca", "oisp-ca.pem")) ? true : undefined;
    }, 60_000);
    await waitForPort(proxyPort);
  }, 120_000);

  afterAll(async () => {
    await upstream?.close();
    receiver.server.stop(true);
  });

  test("`oisp status --json` inside the container is the probe: exit 0 while running", async () => {
    const r = await podman(["exec", name, IMAGE_BINARY, "status", "--json"]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out);
    expect(s.running).toBe(true);
    expect(s.data_dir).toBe("/var/lib/oisp");
    expect(s.sensor.snapshot.exporters.map((e: { name: string }) => e.name)).toEqual(["otlp"]);
  });

  test("a curl on the host through the container's proxy reaches the provider and its span reaches the collector", async () => {
    // Async: the fake provider answers from this process's event loop.
    const curl = Bun.spawn(
      ["curl", "-sS", "--max-time", "20", "--proxy", `http://127.0.0.1:${proxyPort}`, "--cacert", path.join(data, "ca", "oisp-ca.pem"),
       "https://api.openai.com/v1/chat/completions", "-H", "Authorization: Bearer sk-proj-ImageTestKey0123456789abcdefSECRET",
       "-H", "content-type: application/json", "-d", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello from the host" }] })],
      { stdout: "pipe", stderr: "pipe" },
    );
    const [body, err] = await Promise.all([new Response(curl.stdout).text(), new Response(curl.stderr).text(), curl.exited]);
    expect(err).toBe("");
    expect(JSON.parse(body).id).toBe(FIXED.openaiChatId);
    const span = await waitFor("the chat span at the OTLP receiver", () => receiver.spans.find((s) => s.attrs["gen_ai.operation.name"] === "chat"), 30_000);
    expect(span.attrs).toMatchObject({ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "server.address": "api.openai.com" });
    expect(span.attrs["gen_ai.usage.output_tokens"]).toBeGreaterThan(0);
    expect(span.name).toStartWith("chat ");
    expect(JSON.stringify(receiver.spans)).not.toContain("ImageTestKey0123456789abcdefSECRET");
  }, 60_000);

  test("SIGTERM stops it cleanly (exit 0); the probe then says not running (exit 3)", async () => {
    const stop = await podman(["stop", "--time", "20", name]);
    expect(stop.code).toBe(0);
    expect(JSON.parse((await podman(["inspect", name])).out)[0].State.ExitCode).toBe(0);
    const probe = await podman(["run", "--rm", ...RUN, "--read-only", "-v", `${data}:/var/lib/oisp`, image, "status", "--json"]);
    expect(probe.code).toBe(3);
    expect(JSON.parse(probe.out).running).toBe(false);
  }, 60_000);
});

describe("the exporter spool in the data volume survives the container", () => {
  test("events spooled while the collector is down are delivered by the next container on the same volume", async () => {
    const upstream = await startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler() });
    const collectorPort = await freePort(); // nothing listens there until the second container runs
    const conf = tempDir("oisp-spool-conf-");
    fs.writeFileSync(path.join(conf, "upstream-ca.pem"), upstream.caPem);
    const proxyPort = await freePort();
    fs.writeFileSync(
      path.join(conf, "config.toml"),
      `[proxy]\nlisten = "127.0.0.1:${proxyPort}"\nupstream_ca = ["upstream-ca.pem"]\n[export]\nbatch_size = 1\n[export.otlp]\nendpoint = "http://127.0.0.1:${collectorPort}"\n`,
    );
    fs.chmodSync(conf, 0o755);
    const data = tempDir("oisp-spool-data-");
    fs.chownSync(data, OISP_UID, OISP_UID);
    const start = async (name: string) => {
      const r = await podman([
        "run", "-d", "--name", name, ...RUN, "--network=host", "--read-only", "--tmpfs", "/tmp", "-v", `${data}:/var/lib/oisp`, "-v", `${conf}:/etc/oisp:ro`,
        image, "up", "--capture", "proxy", "--config", "/etc/oisp/config.toml", "--resolve", `api.openai.com:443:127.0.0.1:${upstream.port}`,
      ]);
      if (r.code !== 0) throw new Error(`podman run failed:\n${r.err}`);
      containers.push(name);
      await waitFor(`${name}'s probe`, async () => ((await podman(["exec", name, IMAGE_BINARY, "status", "--json"])).code === 0 ? true : undefined), 60_000);
    };
    let receiver: OtlpReceiver | undefined;
    try {
      const first = `oisp-spool-a-${process.pid}`;
      await start(first);
      await waitForPort(proxyPort);
      const curl = Bun.spawn(
        ["curl", "-sS", "--max-time", "20", "--proxy", `http://127.0.0.1:${proxyPort}`, "--cacert", path.join(data, "ca", "oisp-ca.pem"), "https://api.openai.com/v1/chat/completions",
         "-H", "content-type: application/json", "-d", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "spooled" }] })],
        { stdout: "pipe", stderr: "pipe" },
      );
      expect(JSON.parse(await new Response(curl.stdout).text()).id).toBe(FIXED.openaiChatId);
      // The exporter could not send: the call waits in its queue, then on disk when the container stops.
      await waitFor("the exporter retrying", async () => {
        const s = JSON.parse((await podman(["exec", first, IMAGE_BINARY, "status", "--json"])).out);
        const e = s.sensor.snapshot?.exporters?.[0];
        return e?.state === "retrying" && e.queued + e.spooledBatches > 0 ? true : undefined;
      }, 30_000);
      expect((await podman(["stop", "--time", "20", first])).code).toBe(0);
      const spool = path.join(data, "spool", "export-otlp");
      expect(fs.readdirSync(spool).length).toBeGreaterThan(0);

      receiver = new OtlpReceiver(collectorPort);
      await start(`oisp-spool-b-${process.pid}`);
      const span = await waitFor("the spooled span at the collector", () => receiver!.spans.find((s) => s.attrs["gen_ai.operation.name"] === "chat"), 30_000);
      expect(span.attrs).toMatchObject({ "gen_ai.provider.name": "openai", "server.address": "api.openai.com" });
      expect(String(span.attrs["gen_ai.response.model"])).toStartWith("gpt-4o-mini");
    } finally {
      receiver?.server.stop(true);
      await upstream.close();
    }
  }, 180_000);
});

describe("eBPF capture in the container, as the DaemonSet runs it", () => {
  const ds = Bun.YAML.parse(fs.readFileSync(path.join(repoRoot, "deploy", "kubernetes", "daemonset.yaml"), "utf8")) as any;
  const spec = ds.spec.template.spec.containers[0];
  const command: string[] = [...spec.command, ...spec.args];
  const receiver = new OtlpReceiver();
  const name = `oisp-ebpf-test-${process.pid}`;
  let upstream: TlsUpstream;
  let addr: string;
  let caFile: string;

  beforeAll(async () => {
    ({ addr, upstream } = await listenOnRandomLoopback((host) => startTlsUpstream({ hosts: ["api.openai.com"], handler: fakeProviderHandler(), listen: { host, port: 443 } })));
    const conf = tempDir("oisp-ebpf-conf-");
    caFile = path.join(conf, "upstream-ca.pem");
    fs.writeFileSync(caFile, upstream.caPem);
    // The DaemonSet's ConfigMap, plus this test's process tree as the only one captured and the receiver.
    const base = (Bun.YAML.parse(fs.readFileSync(path.join(repoRoot, "deploy", "kubernetes", "configmap.yaml"), "utf8")) as any).data["config.toml"];
    fs.writeFileSync(path.join(conf, "config.toml"), `${base}\n[ebpf]\npids = [${process.pid}]\n[export.otlp]\nendpoint = "${receiver.url}"\n`.replace("spool_mb = 256", "spool_mb = 256\nbatch_size = 1"));
    fs.chmodSync(conf, 0o755);
    const data = tempDir("oisp-ebpf-data-");
    const sc = spec.securityContext;
    const r = await podman([
      "run", "-d", "--name", name, ...RUN,
      "--pid=host", "--network=host", "--read-only", "--tmpfs", "/tmp",
      "--user", `${sc.runAsUser}:${sc.runAsGroup}`, "--cap-drop", "ALL", ...sc.capabilities.add.flatMap((c: string) => ["--cap-add", c]),
      "--security-opt", "no-new-privileges", ...(sc.seccompProfile.type === "RuntimeDefault" ? [] : ["--security-opt", "seccomp=unconfined"]),
      "-v", `${data}:/var/lib/oisp`, "-v", `${conf}:/etc/oisp:ro`,
      "--entrypoint", command[0]!, image, ...command.slice(1),
    ]);
    if (r.code !== 0) throw new Error(`podman run failed:\n${r.err}`);
    containers.push(name);
    await waitFor("the container's probes attached", async () => {
      const logs = await podman(["logs", name]);
      if (JSON.parse((await podman(["inspect", name])).out)[0].State.Running !== true) throw new Error(`container exited:\n${logs.out}\n${logs.err}`);
      return (logs.out + logs.err).includes("Capturing TLS plaintext with eBPF") ? true : undefined;
    }, 90_000);
  }, 150_000);

  afterAll(async () => {
    await upstream?.close();
    receiver.server.stop(true);
  });

  test("the container runs exactly the DaemonSet's command, with only its capabilities", async () => {
    const [info] = JSON.parse((await podman(["inspect", name])).out);
    expect([info.Path, ...info.Args]).toEqual(command);
    // The DaemonSet's capabilities, less any this machine's own bounding set lacks (a sandbox may hold back
    // CAP_SYS_RESOURCE; podman cannot grant what it does not have).
    const bounding = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(fs.readFileSync("/proc/self/status", "utf8"))![1]}`);
    const expected = spec.securityContext.capabilities.add.filter((c: string) => (bounding >> BigInt(CAP_BITS[c]!)) & 1n).map((c: string) => `CAP_${c}`);
    expect([...info.EffectiveCaps].sort()).toEqual(expected.sort());
    expect(info.HostConfig.ReadonlyRootfs).toBe(true);
    const probe = await podman(["exec", name, ...spec.livenessProbe.exec.command]);
    expect(probe.code).toBe(0);
    // Every part started inside the image (the TLS probes' and the process source's Workers, libbpf).
    const logs = await podman(["logs", name]);
    expect(`${logs.out}${logs.err}`.split("\n").filter((l) => /^error:|EACCES|EPERM/.test(l))).toEqual([]);
  });

  test("a curl on the host, no proxy and no CA given to oisp, is captured with eBPF and exported", async () => {
    const curl = Bun.spawn(
      ["curl", "-sS", "--max-time", "20", "--resolve", `api.openai.com:443:${addr}`, "--cacert", caFile, "https://api.openai.com/v1/chat/completions",
       "-H", "Authorization: Bearer sk-proj-EbpfImageKey0123456789abcdefSECRET", "-H", "content-type: application/json",
       "-d", JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hello from the node" }] })],
      { stdout: "pipe", stderr: "pipe", env: { ...process.env, HTTPS_PROXY: "", https_proxy: "" } },
    );
    const [body, err] = await Promise.all([new Response(curl.stdout).text(), new Response(curl.stderr).text(), curl.exited]);
    expect(err).toBe("");
    expect(JSON.parse(body).id).toBe(FIXED.openaiChatId);
    // The container's log names the files it probed (and any it could not) if the span never comes.
    const span = await waitFor("the chat span at the OTLP receiver", () => receiver.spans.find((s) => s.attrs["gen_ai.operation.name"] === "chat"), 30_000).catch(async (err) => {
      const logs = await podman(["logs", name]);
      throw new Error(`${(err as Error).message}; curl was pid ${curl.pid}; container log:\n${logs.out}${logs.err}`);
    });
    expect(span.attrs).toMatchObject({ "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini" });
    expect(JSON.stringify(receiver.spans)).not.toContain("EbpfImageKey0123456789abcdefSECRET");
    const status = JSON.parse((await podman(["exec", name, IMAGE_BINARY, "status", "--json"])).out);
    expect(status.running).toBe(true);
    // The resident memory the DaemonSet's requests and limits are set from (printed for the docs).
    const pid = JSON.parse((await podman(["inspect", name])).out)[0].State.Pid;
    const rss = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    console.log(`eBPF container: RSS ${(Number(rss) / 1024).toFixed(0)} MiB after one captured call`);
  }, 60_000);

  test("SIGTERM: exit 0", async () => {
    expect((await podman(["stop", "--time", "20", name])).code).toBe(0);
    expect(JSON.parse((await podman(["inspect", name])).out)[0].State.ExitCode).toBe(0);
  }, 60_000);
});
