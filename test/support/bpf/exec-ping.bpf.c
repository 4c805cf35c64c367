// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// Test program for ffi/libbpf.ts: reports each exec whose parent process is in `watch`, counting them in
// `hits` (a hash map the test reads back), through the ring buffer `events`.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

struct ping {
  __u32 pid;
  __u32 ppid;
  char comm[16];
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 16);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 64);
  __type(key, __u32);
  __type(value, __u64);
} watch SEC(".maps");

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm) {
  __u32 ppid = task->real_parent->tgid;
  __u64 *hits = bpf_map_lookup_elem(&watch, &ppid);
  if (!hits) return 0;
  __sync_fetch_and_add(hits, 1);
  struct ping *p = bpf_ringbuf_reserve(&events, sizeof(*p), 0);
  if (!p) return 0;
  p->pid = task->tgid;
  p->ppid = ppid;
  bpf_get_current_comm(p->comm, sizeof(p->comm));
  bpf_ringbuf_submit(p, 0);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
