// What the processes around AI calls do: process.exec, file.write, and the TLS ClientHello of every new
// connection (its SNI names the host even when the TLS library cannot be hooked: Bun, Go, rustls).
// Read by src/capture/ebpf/proc-records.ts; the record layouts below are mirrored there byte for byte.
//
// Hooks (all work without tracefs, see ../../docs or shared notes): tp_btf sched_process_{exec,fork,exit},
// tp_btf sys_enter / sys_exit (kprobes and fentry are not available on the kernels we target).
//
// Two pid sets, both fed by fork in the kernel and bounded:
//   scope    when settings.scope_on: only these process trees exist for us at all (tests on a shared
//            machine). Off in the product: every process may be sniffed.
//   watched  processes that made AI calls and their descendants: their execs and file writes are
//            reported. A ClientHello marks its process watched here at once, provisionally (the value
//            names it: WATCH_PROVISIONAL | tgid), so what it does next is not lost while user space reads
//            the SNI; user space then confirms it (value 1, an AI host) or removes it, and drops what
//            was reported under a provisional mark it did not confirm. Forks inherit the value.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define REC_EXEC 1
#define REC_PATH 2
#define REC_WRITE 3
#define REC_CHUNK 4
#define REC_CLOSE 5
#define REC_EXIT 6
#define REC_HELLO 7

#define ARGV_MAX 4096
#define PATH_MAX_BUF 4096
#define NAME_SLACK 256
#define FILENAME_MAX_LEN 256
#define CHUNK 4096
#define MAX_CHUNKS 8
#define HELLO_MAX 4096

// x86_64 syscall numbers
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_PWRITE64 18
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_SENDMSG 46

#define S_IFMT_ 0170000
#define S_IFREG_ 0100000
#define S_IFSOCK_ 0140000

// Counters (stats map indexes), read by `oisp status`.
#define ST_DROP_EXEC 0
#define ST_DROP_PATH 1
#define ST_DROP_WRITE 2
#define ST_DROP_CHUNK 3
#define ST_DROP_HELLO 4
#define ST_DROP_OTHER 5
#define ST_WATCH_FULL 6
#define ST_SCOPE_FULL 7
#define ST_PENDING_FULL 8
#define ST_COUNT 9

struct hdr {
  __u32 type;
  __u32 pid; // tgid
  __u32 tid;
  __u32 watch; // the process's proc_watched value when recorded (exec, path, write, chunk, close), else 0
  __u64 ts_ns; // bpf_ktime_get_ns (CLOCK_MONOTONIC)
};

struct exec_rec {
  struct hdr h;
  __u32 ppid;
  __u32 uid;
  __u32 argv_len;
  __u32 argv_full_len;
  __u32 cwd_len;
  __u32 _pad;
  char comm[16];
  char filename[FILENAME_MAX_LEN];
  char argv[ARGV_MAX];
  // components leaf → root, each NUL-terminated; user space reverses them
  char cwd[PATH_MAX_BUF + NAME_SLACK];
};

struct path_rec {
  struct hdr h;
  __u64 file;
  __u64 ino;
  __u32 path_len;
  __u32 _pad;
  char path[PATH_MAX_BUF + NAME_SLACK];
};

struct write_rec {
  struct hdr h;
  __u64 file;
  __u64 ino;
  __s64 ret;
  __s64 offset; // pwrite64's offset, -1 otherwise
  __u32 fd;
  __u32 syscall;
  __u32 chunks; // data chunks that follow
  __u32 _pad;
};

struct chunk_rec {
  struct hdr h;
  __u64 file;
  __u32 len;
  __u32 seq;
  char data[CHUNK];
};

struct close_rec {
  struct hdr h;
  __u64 file;
};

struct hello_rec {
  struct hdr h;
  __u16 family;
  __u16 sport;
  __u16 dport;
  __u16 _pad;
  __u32 fd;
  __u32 len;
  __u8 saddr[16];
  __u8 daddr[16];
  __u8 data[HELLO_MAX];
};

struct pending_write {
  __u64 file;
  __u64 ino;
  __u64 buf; // write/pwrite64: the buffer; writev: the iovec array
  __u64 count; // write/pwrite64: the length; writev: iovcnt
  __s64 offset;
  __u32 fd;
  __u32 syscall;
  __u32 watch;
  __u32 _pad;
};

struct settings_t {
  __u32 scope_on;
  __u32 sniff_on;
  __u32 self_tgid;
  __u32 watch_on; // a ClientHello marks its process watched (provisionally)
};

#define WATCH_CONFIRMED 1
#define WATCH_PROVISIONAL 0x80000000u

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 * 1024 * 1024);
} proc_events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct settings_t);
} proc_settings SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 16384);
  __type(key, __u32);
  __type(value, __u32);
} proc_scope SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 8192);
  __type(key, __u32);
  __type(value, __u32);
} proc_watched SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, __u32);
  __type(value, struct pending_write);
} proc_pending SEC(".maps");

// struct file pointers whose path was already sent, with the inode it had (a reused pointer is resent)
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, __u64);
  __type(value, __u64);
} proc_seen_files SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ST_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} proc_stats SEC(".maps");

static __always_inline void count(__u32 idx) {
  __u64 *v = bpf_map_lookup_elem(&proc_stats, &idx);
  if (v) *v += 1;
}

static __always_inline struct settings_t *settings(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&proc_settings, &zero);
}

static __always_inline bool in_scope(struct settings_t *s, __u32 tgid) {
  if (!s || tgid == s->self_tgid) return false;
  if (!s->scope_on) return true;
  return bpf_map_lookup_elem(&proc_scope, &tgid) != NULL;
}

/** The process's proc_watched value; 0 when it is not watched. */
static __always_inline __u32 watch_of(struct settings_t *s, __u32 tgid) {
  if (!s || tgid == s->self_tgid) return 0;
  __u32 *v = bpf_map_lookup_elem(&proc_watched, &tgid);
  return v ? *v : 0;
}

static __always_inline void fill_hdr(struct hdr *h, __u32 type, __u32 watch) {
  __u64 id = bpf_get_current_pid_tgid();
  h->type = type;
  h->pid = id >> 32;
  h->tid = (__u32)id;
  h->watch = watch;
  h->ts_ns = bpf_ktime_get_ns();
}

static __always_inline struct file *fd_file(int fd) {
  struct task_struct *t = bpf_get_current_task_btf();
  struct files_struct *files = BPF_CORE_READ(t, files);
  if (!files) return NULL;
  struct fdtable *fdt = BPF_CORE_READ(files, fdt);
  if (!fdt) return NULL;
  unsigned int max = BPF_CORE_READ(fdt, max_fds);
  if (fd < 0 || (unsigned int)fd >= max) return NULL;
  struct file **arr = BPF_CORE_READ(fdt, fd);
  struct file *f = NULL;
  bpf_probe_read_kernel(&f, sizeof(f), &arr[fd]);
  return f;
}

static __always_inline __u32 file_mode(struct file *f) {
  return BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT_;
}

// Writes the names of a path's components, leaf first, NUL-terminated, into buf; the length goes to *len.
// Crosses mount points. The running length lives in memory (*len), not in a register, so the verifier
// sees an unknown bounded offset each round instead of exploring every possible sum of name lengths.
static __always_inline void walk_path(struct dentry *d, struct vfsmount *vm, char *buf, volatile __u32 *len) {
  struct mount *m = container_of(vm, struct mount, mnt);
  *len = 0;
  for (int i = 0; i < 48; i++) {
    struct dentry *mnt_root = BPF_CORE_READ(vm, mnt_root);
    struct dentry *parent = BPF_CORE_READ(d, d_parent);
    if (d == mnt_root || d == parent) {
      struct mount *mp = BPF_CORE_READ(m, mnt_parent);
      if (m == mp || !mp) break;
      d = BPF_CORE_READ(m, mnt_mountpoint);
      m = mp;
      vm = &mp->mnt;
      continue;
    }
    __u32 off = *len;
    if (off >= PATH_MAX_BUF) break;
    const unsigned char *name = BPF_CORE_READ(d, d_name.name);
    long n = bpf_probe_read_kernel_str(&buf[off & (PATH_MAX_BUF - 1)], NAME_SLACK, name);
    if (n <= 0) break;
    *len = off + n;
    d = parent;
  }
}

// ---------------------------------------------------------------------------------------------
// processes

SEC("tp_btf/sched_process_fork")
int BPF_PROG(proc_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 ptgid = parent->tgid;
  __u32 ctgid = child->tgid;
  if (ctgid == ptgid) return 0; // a thread
  __u32 one = 1;
  if (bpf_map_lookup_elem(&proc_scope, &ptgid) && bpf_map_update_elem(&proc_scope, &ctgid, &one, BPF_ANY) != 0) count(ST_SCOPE_FULL);
  __u32 *watch = bpf_map_lookup_elem(&proc_watched, &ptgid);
  if (watch) {
    __u32 inherited = *watch;
    if (bpf_map_update_elem(&proc_watched, &ctgid, &inherited, BPF_ANY) != 0) count(ST_WATCH_FULL);
  }
  return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) {
  struct settings_t *s = settings();
  __u32 tgid = p->tgid;
  __u32 watch = watch_of(s, tgid);
  if (!watch) return 0;
  struct exec_rec *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
  if (!r) {
    count(ST_DROP_EXEC);
    return 0;
  }
  fill_hdr(&r->h, REC_EXEC, watch);
  r->ppid = BPF_CORE_READ(p, real_parent, tgid);
  r->uid = BPF_CORE_READ(p, cred, uid.val);
  bpf_get_current_comm(r->comm, sizeof(r->comm));
  bpf_probe_read_kernel_str(r->filename, sizeof(r->filename), BPF_CORE_READ(bprm, filename));
  unsigned long start = BPF_CORE_READ(p, mm, arg_start);
  unsigned long end = BPF_CORE_READ(p, mm, arg_end);
  __u64 len = end > start ? end - start : 0;
  r->argv_full_len = len;
  if (len > ARGV_MAX) len = ARGV_MAX;
  r->argv_len = 0;
  if (len > 0 && bpf_probe_read_user(r->argv, len, (void *)start) == 0) r->argv_len = len;
  struct fs_struct *fs = BPF_CORE_READ(p, fs);
  walk_path(BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt), r->cwd, &r->cwd_len);
  bpf_ringbuf_submit(r, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct *p) {
  if (p->pid != p->tgid) return 0; // a thread; the group leader's exit ends the process for us
  __u32 tgid = p->tgid;
  bpf_map_delete_elem(&proc_scope, &tgid);
  if (bpf_map_delete_elem(&proc_watched, &tgid) != 0) return 0;
  struct hdr *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
  if (!r) {
    count(ST_DROP_OTHER);
    return 0;
  }
  fill_hdr(r, REC_EXIT, 0);
  bpf_ringbuf_submit(r, 0);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// file writes of watched processes, and ClientHellos of everyone in scope

static __always_inline void send_path_once(struct file *f, __u64 ino, __u32 watch) {
  __u64 key = (__u64)f;
  __u64 *seen = bpf_map_lookup_elem(&proc_seen_files, &key);
  if (seen && *seen == ino) return;
  struct path_rec *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
  if (!r) {
    count(ST_DROP_PATH);
    return;
  }
  fill_hdr(&r->h, REC_PATH, watch);
  r->file = key;
  r->ino = ino;
  walk_path(BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt), r->path, &r->path_len);
  bpf_ringbuf_submit(r, 0);
  bpf_map_update_elem(&proc_seen_files, &key, &ino, BPF_ANY);
}

/**
 * A ClientHello's process is watched from now on, provisionally, unless user space confirmed it already: a
 * mark inherited from a parent is replaced by its own, so its verdict is the one that counts.
 */
static __always_inline void watch_provisionally(__u32 tgid) {
  __u32 *v = bpf_map_lookup_elem(&proc_watched, &tgid);
  if (v && *v == WATCH_CONFIRMED) return;
  __u32 mark = WATCH_PROVISIONAL | tgid;
  if (bpf_map_update_elem(&proc_watched, &tgid, &mark, BPF_ANY) != 0) count(ST_WATCH_FULL);
}

static __always_inline void sniff_hello(struct settings_t *s, __u32 tgid, struct file *f, int fd, const void *buf, __u64 count_) {
  if (!buf || count_ < 6) return;
  __u8 head[6];
  if (bpf_probe_read_user(head, sizeof(head), buf) != 0) return;
  // TLS handshake record (0x16), version 3.x, first message a ClientHello (0x01)
  if (head[0] != 0x16 || head[1] != 0x03 || head[2] > 0x04 || head[5] != 0x01) return;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  struct sock *sk = BPF_CORE_READ(sock, sk);
  if (!sk) return;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family != 2 && family != 10) return; // AF_INET, AF_INET6
  struct hello_rec *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
  if (!r) {
    count(ST_DROP_HELLO);
    return;
  }
  fill_hdr(&r->h, REC_HELLO, 0);
  r->family = family;
  r->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  r->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  r->_pad = 0;
  r->fd = fd;
  __builtin_memset(r->saddr, 0, sizeof(r->saddr));
  __builtin_memset(r->daddr, 0, sizeof(r->daddr));
  // explicit sizes: BPF_CORE_READ_INTO would take sizeof(*r->saddr), one byte
  if (family == 2) {
    bpf_core_read(r->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
    bpf_core_read(r->daddr, 4, &sk->__sk_common.skc_daddr);
  } else {
    bpf_core_read(r->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
    bpf_core_read(r->daddr, 16, &sk->__sk_common.skc_v6_daddr);
  }
  __u64 len = 5 + (((__u64)head[3] << 8) | head[4]);
  if (len > count_) len = count_;
  if (len > HELLO_MAX) len = HELLO_MAX;
  r->len = 0;
  if (bpf_probe_read_user(r->data, len, buf) == 0) r->len = len;
  bpf_ringbuf_submit(r, 0);
  // After the submit: every record marked with this watch comes after the hello in the ring buffer.
  if (s->watch_on) watch_provisionally(tgid);
}

/** The first buffer a write-family syscall sends: for writev and sendmsg, that of the first iovec. */
static __always_inline const void *first_buffer(long id, struct pt_regs *regs, __u64 *len) {
  if (id == NR_WRITE || id == NR_SENDTO) {
    *len = regs->dx;
    return (const void *)regs->si;
  }
  struct iovec iov = {};
  const struct iovec *iovp = NULL;
  if (id == NR_WRITEV) {
    if (regs->dx < 1) return NULL;
    iovp = (const struct iovec *)regs->si;
  } else { // sendmsg
    struct user_msghdr msg = {};
    if (bpf_probe_read_user(&msg, sizeof(msg), (void *)regs->si) != 0 || msg.msg_iovlen < 1) return NULL;
    iovp = msg.msg_iov;
  }
  if (bpf_probe_read_user(&iov, sizeof(iov), iovp) != 0) return NULL;
  *len = iov.iov_len;
  return iov.iov_base;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(proc_sys_enter, struct pt_regs *regs, long id) {
  if (id != NR_WRITE && id != NR_PWRITE64 && id != NR_WRITEV && id != NR_SENDTO && id != NR_SENDMSG && id != NR_CLOSE) return 0;
  struct settings_t *s = settings();
  __u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!in_scope(s, tgid)) return 0;
  __u32 watch = watch_of(s, tgid);
  bool watched = watch != 0;
  bool sniff = s->sniff_on && id != NR_PWRITE64 && id != NR_CLOSE;
  if (!watched && !sniff) return 0;
  int fd = (int)regs->di;
  struct file *f = fd_file(fd);
  if (!f) return 0;
  __u32 mode = file_mode(f);
  if (mode == S_IFSOCK_) {
    if (!sniff) return 0;
    __u64 len = 0;
    const void *buf = first_buffer(id, regs, &len);
    sniff_hello(s, tgid, f, fd, buf, len);
    return 0;
  }
  if (mode != S_IFREG_ || !watched) return 0;
  __u64 ino = BPF_CORE_READ(f, f_inode, i_ino);
  if (id == NR_CLOSE) {
    __u64 key = (__u64)f;
    if (!bpf_map_lookup_elem(&proc_seen_files, &key)) return 0; // never written by a watched process
    struct close_rec *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
    if (!r) {
      count(ST_DROP_OTHER);
      return 0;
    }
    fill_hdr(&r->h, REC_CLOSE, watch);
    r->file = key;
    bpf_ringbuf_submit(r, 0);
    return 0;
  }
  if (id != NR_WRITE && id != NR_PWRITE64 && id != NR_WRITEV) return 0;
  send_path_once(f, ino, watch);
  struct pending_write pw = {
      .file = (__u64)f,
      .ino = ino,
      .buf = regs->si,
      .count = regs->dx,
      .offset = id == NR_PWRITE64 ? (__s64)regs->r10 : -1,
      .fd = fd,
      .syscall = id,
      .watch = watch,
  };
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  if (bpf_map_update_elem(&proc_pending, &tid, &pw, BPF_ANY) != 0) count(ST_PENDING_FULL);
  return 0;
}

static __always_inline __u32 send_chunk(struct pending_write *pw, const void *src, __u64 len, __u32 seq) {
  struct chunk_rec *c = bpf_ringbuf_reserve(&proc_events, sizeof(*c), 0);
  if (!c) {
    count(ST_DROP_CHUNK);
    return 0;
  }
  fill_hdr(&c->h, REC_CHUNK, pw->watch);
  c->file = pw->file;
  c->seq = seq;
  if (len > CHUNK) len = CHUNK;
  c->len = 0;
  if (bpf_probe_read_user(c->data, len, src) == 0) c->len = len;
  bpf_ringbuf_submit(c, 0);
  return 1;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(proc_sys_exit, struct pt_regs *regs, long ret) {
  __u32 tid = (__u32)bpf_get_current_pid_tgid();
  struct pending_write *p = bpf_map_lookup_elem(&proc_pending, &tid);
  if (!p) return 0;
  struct pending_write pw = *p;
  bpf_map_delete_elem(&proc_pending, &tid);
  if (ret <= 0) return 0;
  struct write_rec *r = bpf_ringbuf_reserve(&proc_events, sizeof(*r), 0);
  if (!r) {
    count(ST_DROP_WRITE);
    return 0;
  }
  fill_hdr(&r->h, REC_WRITE, pw.watch);
  r->file = pw.file;
  r->ino = pw.ino;
  r->ret = ret;
  r->offset = pw.offset;
  r->fd = pw.fd;
  r->syscall = pw.syscall;
  r->_pad = 0;
  // The chunks follow the write record; announce how many so user space can tell a lost one.
  __u32 want = 0;
  if (pw.syscall == NR_WRITEV) {
    want = pw.count < MAX_CHUNKS ? pw.count : MAX_CHUNKS;
  } else {
    want = (ret + CHUNK - 1) / CHUNK;
    if (want > MAX_CHUNKS) want = MAX_CHUNKS;
  }
  r->chunks = want;
  bpf_ringbuf_submit(r, 0);

  __u64 left = ret;
  for (__u32 i = 0; i < MAX_CHUNKS; i++) {
    if (i >= want || left == 0) break;
    const void *src;
    __u64 len;
    if (pw.syscall == NR_WRITEV) {
      struct iovec iov = {};
      if (bpf_probe_read_user(&iov, sizeof(iov), (const struct iovec *)pw.buf + i) != 0) break;
      src = iov.iov_base;
      len = iov.iov_len < left ? iov.iov_len : left;
      left -= len;
    } else {
      src = (const char *)pw.buf + (__u64)i * CHUNK;
      len = left < CHUNK ? left : CHUNK;
      left -= len;
    }
    send_chunk(&pw, src, len, i);
  }
  return 0;
}
