// deploy/install.sh and the systemd units against a release built here by build.ts (the binary, the
// units, the default config and SHA256SUMS as a release carries them), installed into a temporary root:
// checksums enforced, the oisp user created for proxy mode, the unit enabled, idempotent, mode switch,
// --uninstall keeping data and an edited config, --purge. Also shellcheck and `systemd-analyze verify`.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { LINUX_SERVICE_FILES } from "../../build.ts";
import { configValuesFromToml } from "../../src/commands/config-file.ts";
import { buildOnce, repoRoot } from "../../packaging/build-once.ts";

const release = path.join(os.tmpdir(), `oisp-release-${process.pid}`);
const script = path.join(repoRoot, "deploy", "install.sh");

function run(cmd: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(cmd, { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

const install = (root: string, ...args: string[]) => run(["sh", script, "--root", root, ...args]);

/** A root with the account files useradd / systemd-sysusers edit. */
function newRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-root-"));
  made.push(root);
  fs.mkdirSync(path.join(root, "etc"));
  fs.writeFileSync(path.join(root, "etc", "passwd"), "root:x:0:0:root:/root:/bin/sh\n");
  fs.writeFileSync(path.join(root, "etc", "group"), "root:x:0:\n");
  return root;
}

/** Every path under root with its type and, for files, mode and content hash (what "the same install" means). */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir).sort()) {
      const p = path.join(dir, name);
      const rel = path.relative(root, p);
      if (/^etc\/(passwd|group|shadow|gshadow)-$|^etc\/\.pwd\.lock$/.test(rel)) continue; // backups the account tools write
      const st = fs.lstatSync(p);
      if (st.isSymbolicLink()) out.push(`${rel} -> ${fs.readlinkSync(p)}`);
      else if (st.isDirectory()) (out.push(`${rel}/`), walk(p));
      else out.push(`${rel} ${(st.mode & 0o7777).toString(8)} ${createHash("sha256").update(fs.readFileSync(p)).digest("hex").slice(0, 12)}`);
    }
  };
  walk(root);
  return out;
}

const made: string[] = [release];
beforeAll(async () => {
  await buildOnce(["--target", "linux", "--package", "--out", release]);
}, 300_000);
afterAll(() => {
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
});

describe("release files", () => {
  test("the release carries the binary, install.sh, both units, the sysusers entry and the default config, all in SHA256SUMS", () => {
    const sums = fs.readFileSync(path.join(release, "SHA256SUMS"), "utf8");
    for (const name of ["oisp", ...Object.keys(LINUX_SERVICE_FILES)]) expect(sums).toMatch(new RegExp(`^[0-9a-f]{64}  ${name.replace(".", "\\.")}$`, "m"));
    expect(Bun.spawnSync(["sha256sum", "--check", "--strict", "SHA256SUMS"], { cwd: release }).exitCode).toBe(0);
    // The default config is valid for the product's own parser.
    expect(configValuesFromToml(fs.readFileSync(path.join(release, "oisp.toml"), "utf8"), "oisp.toml")).toMatchObject({ redaction: "safe", listen: "127.0.0.1:8080" });
  });

  test("install.sh is shellcheck-clean POSIX sh", () => {
    const r = run(["shellcheck", "--shell=sh", "--severity=style", script]);
    expect(r.out + r.err).toBe("");
    expect(r.code).toBe(0);
  });

  test("systemd-analyze verify: both units clean (ExecStart pointed at this build); a typo is reported", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-units-"));
    const units = ["oisp.service", "oisp-proxy.service"].map((u) => {
      const text = fs.readFileSync(path.join(repoRoot, "deploy", "systemd", u), "utf8");
      expect(text).toContain("ExecStart=/usr/local/bin/oisp up --capture ");
      fs.writeFileSync(path.join(dir, u), text.replaceAll("/usr/local/bin/oisp", path.join(release, "oisp")));
      return path.join(dir, u);
    });
    const ok = run(["systemd-analyze", "verify", ...units]);
    expect(ok.err + ok.out).toBe("");
    expect(ok.code).toBe(0);
    fs.writeFileSync(units[0]!, fs.readFileSync(units[0]!, "utf8").replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"));
    expect(run(["systemd-analyze", "verify", units[0]!]).err).toContain("Unknown key 'NoNewPrivilege'");
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the eBPF unit keeps only the capabilities eBPF capture needs; the proxy unit none, as user oisp", () => {
    const ebpf = fs.readFileSync(path.join(repoRoot, "deploy", "systemd", "oisp.service"), "utf8");
    expect(ebpf).toMatch(/^CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_RESOURCE CAP_SYS_PTRACE CAP_DAC_READ_SEARCH CAP_SYS_ADMIN$/m);
    for (const key of ["NoNewPrivileges=yes", "ProtectSystem=strict", "StateDirectory=oisp", "Type=notify", "ExecReload=/bin/kill -HUP $MAINPID"]) expect(ebpf).toContain(key);
    const proxy = fs.readFileSync(path.join(repoRoot, "deploy", "systemd", "oisp-proxy.service"), "utf8");
    expect(proxy).toMatch(/^User=oisp$/m);
    expect(proxy).toMatch(/^CapabilityBoundingSet=$/m);
  });
});

describe("install.sh into a temporary root", () => {
  let root: string;
  beforeAll(() => {
    root = newRoot();
  });

  test("a release whose file does not match SHA256SUMS is refused and nothing is installed", () => {
    const bad = fs.mkdtempSync(path.join(os.tmpdir(), "oisp-badrel-"));
    for (const f of fs.readdirSync(release)) fs.copyFileSync(path.join(release, f), path.join(bad, f));
    fs.appendFileSync(path.join(bad, "oisp-proxy.service"), "\nExecStartPre=/bin/sh -c 'curl evil'\n");
    const before = tree(root);
    const r = install(root, "--from", bad, "--mode", "proxy");
    expect(r.code).not.toBe(0);
    expect(r.err).toContain("oisp-proxy.service: checksum mismatch");
    expect(tree(root)).toEqual(before);
    fs.rmSync(bad, { recursive: true, force: true });
  });

  test("--mode proxy: binary, unit enabled, oisp user, default config", () => {
    const r = install(root, "--from", release, "--mode", "proxy");
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain("verified oisp oisp-proxy.service oisp.sysusers oisp.toml against SHA256SUMS");
    const bin = path.join(root, "usr/local/bin/oisp");
    expect(fs.statSync(bin).mode & 0o777).toBe(0o755);
    expect(run([bin, "--version"]).out).toMatch(/^oisp \d+\.\d+\.\d+ /);
    expect(fs.readFileSync(path.join(root, "etc/systemd/system/oisp-proxy.service"))).toEqual(fs.readFileSync(path.join(repoRoot, "deploy/systemd/oisp-proxy.service")));
    expect(fs.readlinkSync(path.join(root, "etc/systemd/system/multi-user.target.wants/oisp-proxy.service"))).toBe("/etc/systemd/system/oisp-proxy.service");
    expect(fs.readFileSync(path.join(root, "etc/passwd"), "utf8")).toMatch(/^oisp:x:\d+:\d+:OISP Sensor:\/var\/lib\/oisp:/m);
    expect(fs.readFileSync(path.join(root, "etc/oisp/config.toml"))).toEqual(fs.readFileSync(path.join(repoRoot, "deploy/oisp.toml")));
    expect(r.out).toContain("systemd is not running there, so it starts at the next boot");
  });

  test("running it again changes nothing (idempotent); an edited config is kept", () => {
    fs.appendFileSync(path.join(root, "etc/oisp/config.toml"), '\n[export.otlp]\nendpoint = "http://collector:4318"\n');
    const before = tree(root);
    const r = install(root, "--from", release, "--mode", "proxy");
    expect(r.code).toBe(0);
    expect(r.out).toContain("config.toml (kept)");
    expect(tree(root)).toEqual(before);
    expect(fs.readFileSync(path.join(root, "etc/passwd"), "utf8").match(/^oisp:/gm)).toHaveLength(1);
  });

  test("--mode ebpf switches: oisp.service enabled, the proxy unit gone", () => {
    const r = install(root, "--from", path.join(release, "oisp"), "--mode", "ebpf"); // the binary's path: the rest beside it
    expect(r.code).toBe(0);
    expect(r.out).toContain("removed oisp-proxy.service (switched to ebpf mode)");
    expect(fs.existsSync(path.join(root, "etc/systemd/system/oisp-proxy.service"))).toBe(false);
    expect(fs.existsSync(path.join(root, "etc/systemd/system/multi-user.target.wants/oisp-proxy.service"))).toBe(false);
    expect(fs.readlinkSync(path.join(root, "etc/systemd/system/multi-user.target.wants/oisp.service"))).toBe("/etc/systemd/system/oisp.service");
  });

  test("--uninstall removes what it installed and keeps captured data and the edited config; --purge removes those", () => {
    fs.mkdirSync(path.join(root, "var/lib/oisp"), { recursive: true });
    fs.writeFileSync(path.join(root, "var/lib/oisp/oisp.db"), "captured");
    const r = install(root, "--uninstall");
    expect(r.code).toBe(0);
    expect(r.out).toContain("kept captured data in");
    const left = tree(root);
    expect(left.filter((l) => /usr\/local\/bin\/oisp|systemd\/system\/.*oisp|sysusers/.test(l))).toEqual([]);
    expect(fs.readFileSync(path.join(root, "etc/passwd"), "utf8")).not.toContain("oisp:");
    expect(fs.readFileSync(path.join(root, "var/lib/oisp/oisp.db"), "utf8")).toBe("captured");
    expect(fs.readFileSync(path.join(root, "etc/oisp/config.toml"), "utf8")).toContain("collector:4318");
    expect(install(root, "--uninstall").code).toBe(0); // again: nothing left to do, still fine
    const purged = install(root, "--uninstall", "--purge");
    expect(purged.code).toBe(0);
    expect(fs.existsSync(path.join(root, "var/lib/oisp"))).toBe(false);
    expect(fs.existsSync(path.join(root, "etc/oisp"))).toBe(false);
  });

  test("an unchanged default config goes with --uninstall", () => {
    const fresh = newRoot();
    expect(install(fresh, "--from", release, "--mode", "ebpf").code).toBe(0);
    expect(fs.readFileSync(path.join(fresh, "etc/passwd"), "utf8")).not.toContain("oisp:"); // eBPF runs as root: no user
    expect(install(fresh, "--uninstall").code).toBe(0);
    expect(fs.existsSync(path.join(fresh, "etc/oisp"))).toBe(false);
    expect(fs.existsSync(path.join(fresh, "usr/local/share/oisp"))).toBe(false);
  });

  test("--from URL: the release is downloaded (curl) and checked the same way", async () => {
    const served: string[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const name = new URL(req.url).pathname.replace(/^\/releases\/v1\//, "");
        served.push(name);
        const file = path.join(release, name);
        return name.includes("/") || !fs.existsSync(file) ? new Response("not found", { status: 404 }) : new Response(Bun.file(file));
      },
    });
    try {
      const fresh = newRoot();
      // Async: the server answers from this process's event loop.
      const p = Bun.spawn(["sh", script, "--root", fresh, "--from", `http://127.0.0.1:${server.port}/releases/v1`, "--mode", "proxy"], { stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect(err).toBe("");
      expect(code).toBe(0);
      expect(out).toContain("verified oisp oisp-proxy.service oisp.sysusers oisp.toml against SHA256SUMS");
      expect(served.sort()).toEqual(["SHA256SUMS", "oisp", "oisp-proxy.service", "oisp.sysusers", "oisp.toml"]);
      expect(fs.readFileSync(path.join(fresh, "usr/local/bin/oisp"))).toEqual(fs.readFileSync(path.join(release, "oisp")));
    } finally {
      server.stop(true);
    }
  }, 60_000);

  test("bad options are one clear line", () => {
    expect(install(root, "--mode", "pcap", "--from", release).err).toContain("--mode: expected ebpf or proxy, got pcap");
    expect(install(root, "--purge").err).toContain("--purge goes with --uninstall");
    expect(install(root, "--from").err).toContain("--from needs a value");
  });
});

// In CI (root, a throwaway machine) the same script on the real system: the account tools, systemctl and
// paths without --root. Only where nothing of an earlier install exists, and uninstalled with --purge after.
const untouched = ["/usr/local/bin/oisp", "/etc/oisp", "/var/lib/oisp", "/etc/systemd/system/oisp.service", "/etc/systemd/system/oisp-proxy.service"].every((p) => !fs.existsSync(p));
const onRealSystem = process.env.CI === "true" && process.getuid?.() === 0 && untouched && !/^oisp:/m.test(fs.readFileSync("/etc/passwd", "utf8"));
describe.skipIf(!onRealSystem)("install.sh on this (CI) machine", () => {
  test("install --mode proxy, then --uninstall --purge leaves nothing behind", () => {
    try {
      const r = run(["sh", script, "--from", release, "--mode", "proxy", "--no-start"]);
      expect(r.err).toBe("");
      expect(r.code).toBe(0);
      expect(run(["/usr/local/bin/oisp", "--version"]).out).toMatch(/^oisp /);
      expect(fs.readFileSync("/etc/passwd", "utf8")).toMatch(/^oisp:x:\d+:\d+:OISP Sensor:\/var\/lib\/oisp:/m);
      expect(fs.existsSync("/etc/systemd/system/multi-user.target.wants/oisp-proxy.service")).toBe(true);
    } finally {
      const u = run(["sh", script, "--uninstall", "--purge"]);
      expect(u.code).toBe(0);
    }
    for (const p of ["/usr/local/bin/oisp", "/usr/local/share/oisp", "/etc/oisp", "/var/lib/oisp", "/etc/sysusers.d/oisp.conf", "/etc/systemd/system/oisp-proxy.service", "/etc/systemd/system/multi-user.target.wants/oisp-proxy.service"]) expect(fs.existsSync(p)).toBe(false);
    expect(fs.readFileSync("/etc/passwd", "utf8")).not.toMatch(/^oisp:/m);
  }, 120_000);
});
