// The Linux process lookup (linux.ts) on its own thread: its /proc scan reads every fd link of every
// process, CPU work that would otherwise run in slices on the relay's thread and delay all its connections.
// Fed by threaded.ts; a build entry point of the compiled binary (build.ts), like every Worker module.
import { createLinuxProcessLookup } from "./linux.ts";
import type { LookupAnswer, LookupRequest } from "./threaded.ts";

declare const self: Worker;
const post = (m: LookupAnswer) => self.postMessage(m);

const lookup = createLinuxProcessLookup();

self.onmessage = (e: MessageEvent<LookupRequest>) => {
  const { id, client, proxy } = e.data;
  lookup(client, proxy).then(
    (info) => post({ id, info }),
    () => post({ id, info: undefined }),
  );
};

// Tells the relay the module has loaded: until then it runs lookups itself, and a failure is "cannot start"
// (retried with the next candidate module).
post({ id: 0, info: undefined });
