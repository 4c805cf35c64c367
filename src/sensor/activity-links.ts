// Which earlier event a process.exec or file.write follows from, per process: the seed's chain
// model call → tool call → process.exec → file.write. Bounded; the oldest processes are forgotten first.

export class ActivityLinks {
  /** pid → id of the newest AI event (ai.response, agent.tool_call) of that process. */
  private readonly ai = new Map<number, string>();
  /** pid → id of its process.exec. */
  private readonly execs = new Map<number, string>();

  constructor(private readonly max = 4096) {}

  noteAi(pid: number, eventId: string): void {
    remember(this.ai, pid, eventId, this.max);
  }

  noteExec(pid: number, eventId: string): void {
    remember(this.execs, pid, eventId, this.max);
  }

  /** A new program: caused by its parent's newest AI event, else by the parent's own exec (a chain of tools). */
  execCause(ppid: number): string | undefined {
    return this.ai.get(ppid) ?? this.execs.get(ppid);
  }

  /** A file written: by the writer's newest AI event, else by the exec that started the writer. */
  writeCause(pid: number): string | undefined {
    return this.ai.get(pid) ?? this.execs.get(pid);
  }
}

function remember(map: Map<number, string>, pid: number, id: string, max: number): void {
  map.delete(pid); // re-insert: Map order is the eviction order
  map.set(pid, id);
  if (map.size > max) map.delete(map.keys().next().value!);
}
