// `oisp ca init | path | export | install | uninstall | status`
import fs from "node:fs";
import { caFiles, caTrustStatus, exportCa, initCa, installCa, loadCa, uninstallCa } from "../ca/index.ts";
import { dataDir } from "../config/paths.ts";
import { parseFlags, UsageError } from "../util/args.ts";

export const caHelp = `Usage: oisp ca <init|path|export|install|uninstall|status> [flags]

Manage the local certificate authority that signs the certificates oisp presents for AI hosts.

  init [--force]              create the CA (ECDSA P-256, 10 years) in the data directory
  path                        print the CA certificate's path
  export [--format pem|der|p12] [--out FILE] [--password PW]
                              write the CA certificate (never the key) to FILE or stdout
  install                     add the CA to this OS's trust store (may need admin rights)
  uninstall                   remove it from the trust store
  status                      show whether the CA exists and is trusted

The key stays in the data directory, readable by its owner only.`;

export async function caCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      help: { type: "boolean", short: "h" },
      force: { type: "boolean" },
      format: { type: "string" },
      out: { type: "string", short: "o" },
      password: { type: "string" },
    },
    "ca",
    1,
  );
  const sub = positionals[0];
  if (values.help || !sub) {
    console.log(caHelp);
    return sub || values.help ? 0 : 2;
  }
  const dir = dataDir();
  switch (sub) {
    case "init": {
      const { created, files } = await initCa(dir, { force: values.force });
      console.log(created ? `created CA ${files.certPath}` : `CA already exists: ${files.certPath} (use --force to replace it)`);
      return 0;
    }
    case "path":
      await loadCa(dir); // fail with the clear error if there is none
      console.log(caFiles(dir).certPath);
      return 0;
    case "export": {
      const format = values.format ?? "pem";
      if (format !== "pem" && format !== "der" && format !== "p12")
        throw new UsageError(`--format: expected pem, der or p12, got "${format}"`);
      const bytes = await exportCa(dir, format, { password: values.password });
      if (values.out) {
        fs.writeFileSync(values.out, bytes);
        console.error(`wrote ${values.out}`);
      } else {
        process.stdout.write(bytes);
      }
      return 0;
    }
    case "install":
    case "uninstall": {
      const result = sub === "install" ? await installCa(dir) : await uninstallCa(dir);
      (result.ok ? console.log : console.error)(result.message);
      return result.ok ? 0 : 1;
    }
    case "status": {
      const status = await caTrustStatus(dir);
      console.log(typeof status === "string" ? status : JSON.stringify(status, null, 2));
      return 0;
    }
    default:
      throw new UsageError(`oisp ca: unknown subcommand "${sub}" (init, path, export, install, uninstall, status)`);
  }
}
