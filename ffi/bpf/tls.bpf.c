// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
// TLS plaintext capture: uprobes on OpenSSL's SSL_write/SSL_read (+ the _ex pair) copy what the application
// hands to (or gets from) the TLS library into a ring buffer, in records of at most CHUNK bytes carrying the
// byte offset in their stream, so userspace (src/capture/ebpf/) sees order and gaps. Each TLS session is keyed
// by (pid, SSL*) and bound to its socket by the write/read syscall OpenSSL issues on the same thread during the
// SSL call (BIO on a socket: curl, Python), or, where the application does its own I/O (Node), by the next
// socket write on that thread after SSL_write returned. The socket's 5-tuple is read from the kernel's sock.
//
// Built by ffi/bpf/compile.ts (clang -target bpf, CO-RE against the running kernel's BTF). x86-64 syscall
// numbers. Every map is bounded; what does not fit is counted in `stats`.
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define CHUNK 16384
#define MAX_CHUNKS 1024 /* one SSL call: 16 MiB; bytes beyond are counted as lost (the offsets show the gap) */
#define SNI_MAX 256

#define K_DATA 1
#define K_BIND 2
#define K_CLOSE 3
#define K_SNI 4
#define K_EXIT 5
#define K_EXEC 6

#define DIR_WRITE 0
#define DIR_READ 1

#define AF_INET 2
#define AF_INET6 10
#define S_IFMT 0170000
#define S_IFSOCK 0140000

#define NR_READ 0
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

#define ST_RECORDS 0
#define ST_DROPPED 1    /* records the ring buffer had no room for */
#define ST_LOST_BYTES 2 /* payload bytes not delivered (dropped records, unreadable buffers, over MAX_CHUNKS) */
#define ST_CALLS 3      /* SSL calls with data */
#define ST_SESSIONS 4
#define ST_BOUND 5
#define ST_COUNT 8

/* Ring-buffer record. Layout mirrored in src/capture/ebpf/records.ts (HEADER_SIZE = offsetof(data)). */
struct rec {
  __u64 ts;     /* bpf_ktime_get_ns */
  __u64 ssl;    /* SSL* */
  __u64 offset; /* DATA: offset of data[0] in its direction's stream; CLOSE: bytes written in total */
  __u64 aux;    /* CLOSE: bytes read in total */
  __u32 pid;
  __u32 tid;
  __u32 len; /* bytes in data[] */
  __s32 fd;
  __u8 kind;
  __u8 dir;
  __u16 family;
  __u16 sport; /* local port */
  __u16 dport; /* remote port */
  __u8 saddr[16];
  __u8 daddr[16];
  char comm[16];
  __u8 data[CHUNK];
};
#define HDR (sizeof(struct rec) - CHUNK)

struct skey {
  __u32 pid;
  __u32 pad;
  __u64 ssl;
};

struct sess {
  __u64 off[2];
  __s32 fd;
  __u16 family;
  __u16 sport;
  __u16 dport;
  __u8 bound;
  __u8 pad;
  __u8 saddr[16];
  __u8 daddr[16];
};

struct call {
  __u64 ssl;
  __u64 buf;
  __u64 outlen; /* _ex: size_t *written / *readbytes */
  __u32 dir;
  __u32 pad;
};

struct fdkey {
  __u32 pid;
  __s32 fd;
};

struct oisp_settings {
  __u32 filter; /* 1: only pids in traced_pids (and their descendants) */
  __u32 pad;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 << 20);
} events SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct oisp_settings);
} settings SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} traced_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct skey);
  __type(value, struct sess);
} sessions SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct fdkey);
  __type(value, struct skey);
} fd_sessions SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct call);
} active SEC(".maps");

/* Threads whose last SSL_write had no socket yet (the application does its own socket I/O). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, __u64);
  __type(value, struct skey);
} pending_bind SEC(".maps");

/* Sessions userspace will not record (not to an AI host): their bytes stay in the kernel. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct skey);
  __type(value, __u8);
} muted SEC(".maps");

/* Processes that have TLS sessions: their exit is reported so userspace closes them. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, __u32);
  __type(value, __u8);
} tls_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, ST_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(__u32 which, __u64 n) {
  __u64 *v = bpf_map_lookup_elem(&stats, &which);
  if (v) *v += n;
}

static __always_inline int traced(__u32 pid) {
  __u32 k = 0;
  struct oisp_settings *s = bpf_map_lookup_elem(&settings, &k);
  if (!s || !s->filter) return 1;
  return bpf_map_lookup_elem(&traced_pids, &pid) != NULL;
}

static __always_inline void header(struct rec *r, __u8 kind, __u64 id, struct skey *key, struct sess *s) {
  r->ts = bpf_ktime_get_ns();
  r->ssl = key ? key->ssl : 0;
  r->offset = 0;
  r->aux = 0;
  r->pid = id >> 32;
  r->tid = (__u32)id;
  r->len = 0;
  r->kind = kind;
  r->dir = 0;
  if (s) {
    r->fd = s->bound ? s->fd : -1;
    r->family = s->family;
    r->sport = s->sport;
    r->dport = s->dport;
    __builtin_memcpy(r->saddr, s->saddr, 16);
    __builtin_memcpy(r->daddr, s->daddr, 16);
  } else {
    r->fd = -1;
    r->family = 0;
    r->sport = 0;
    r->dport = 0;
    __builtin_memset(r->saddr, 0, 16);
    __builtin_memset(r->daddr, 0, 16);
  }
  bpf_get_current_comm(r->comm, sizeof(r->comm));
}

/* A header-only record (BIND, CLOSE, EXIT). */
static __always_inline void emit_meta(__u8 kind, __u64 id, struct skey *key, struct sess *s) {
  struct rec *r = bpf_ringbuf_reserve(&events, HDR, 0);
  if (!r) {
    count(ST_DROPPED, 1);
    return;
  }
  header(r, kind, id, key, s);
  if (kind == K_CLOSE && s) {
    r->offset = s->off[DIR_WRITE];
    r->aux = s->off[DIR_READ];
  }
  bpf_ringbuf_submit(r, 0);
  count(ST_RECORDS, 1);
}

static __always_inline struct sess *session(struct skey *key) {
  struct sess *s = bpf_map_lookup_elem(&sessions, key);
  if (s) return s;
  struct sess fresh = {};
  fresh.fd = -1;
  if (bpf_map_update_elem(&sessions, key, &fresh, BPF_NOEXIST) == 0) {
    count(ST_SESSIONS, 1);
    __u8 one = 1;
    bpf_map_update_elem(&tls_pids, &key->pid, &one, BPF_ANY);
  }
  return bpf_map_lookup_elem(&sessions, key);
}

static int on_enter(struct pt_regs *ctx, __u32 dir, int ex) {
  __u64 id = bpf_get_current_pid_tgid();
  __u32 pid = id >> 32;
  if (!traced(pid)) return 0;
  struct call c = {};
  c.ssl = PT_REGS_PARM1(ctx);
  c.buf = PT_REGS_PARM2(ctx);
  c.outlen = ex ? PT_REGS_PARM4(ctx) : 0;
  c.dir = dir;
  struct skey key = {.pid = pid, .ssl = c.ssl};
  if (bpf_map_lookup_elem(&muted, &key)) return 0;
  if (!session(&key)) return 0;
  bpf_map_update_elem(&active, &id, &c, BPF_ANY);
  return 0;
}

struct chunk_ctx {
  __u64 id;
  __u64 buf;
  __u64 n;
  __u64 base;
  struct skey *key;
  struct sess *s;
  __u32 dir;
};

/* One record of `size` (a constant per inlined copy: the verifier needs constant reservations). */
static __always_inline long emit_chunk_sized(struct chunk_ctx *cc, __u64 done, __u32 len, const __u32 size) {
  struct rec *r = bpf_ringbuf_reserve(&events, size, 0);
  if (!r) {
    count(ST_DROPPED, 1);
    count(ST_LOST_BYTES, len);
    return 0;
  }
  header(r, K_DATA, cc->id, cc->key, cc->s);
  r->dir = cc->dir;
  r->offset = cc->base + done;
  r->aux = cc->n;
  if (len > size - HDR) len = size - HDR;
  if (bpf_probe_read_user(r->data, len, (void *)(cc->buf + done))) {
    bpf_ringbuf_discard(r, 0);
    count(ST_LOST_BYTES, len);
    return 0;
  }
  r->len = len;
  bpf_ringbuf_submit(r, 0);
  count(ST_RECORDS, 1);
  return 0;
}

static long emit_chunk(__u32 i, void *data) {
  struct chunk_ctx *cc = data;
  __u64 done = (__u64)i * CHUNK;
  if (done >= cc->n) return 1;
  __u64 left = cc->n - done;
  __u32 len = left > CHUNK ? CHUNK : (__u32)left;
  if (len <= 512 - HDR) return emit_chunk_sized(cc, done, len, 512);
  if (len <= 2048 - HDR) return emit_chunk_sized(cc, done, len, 2048);
  if (len <= 8192 - HDR) return emit_chunk_sized(cc, done, len, 8192);
  return emit_chunk_sized(cc, done, len, sizeof(struct rec));
}

static int on_return(struct pt_regs *ctx) {
  __u64 id = bpf_get_current_pid_tgid();
  struct call *cp = bpf_map_lookup_elem(&active, &id);
  if (!cp) return 0;
  struct call c = *cp;
  bpf_map_delete_elem(&active, &id);
  __u64 n = 0;
  if (c.outlen) {
    if ((int)PT_REGS_RC(ctx) != 1) return 0;
    if (bpf_probe_read_user(&n, sizeof(n), (void *)c.outlen)) return 0;
  } else {
    int rc = (int)PT_REGS_RC(ctx);
    if (rc <= 0) return 0;
    n = rc;
  }
  if (n == 0) return 0;
  struct skey key = {.pid = id >> 32, .ssl = c.ssl};
  struct sess *s = bpf_map_lookup_elem(&sessions, &key);
  if (!s) return 0;
  __u32 dir = c.dir & 1;
  __u64 base = s->off[dir];
  s->off[dir] = base + n;
  count(ST_CALLS, 1);
  if (!s->bound && dir == DIR_WRITE) bpf_map_update_elem(&pending_bind, &id, &key, BPF_ANY);
  struct chunk_ctx cc = {.id = id, .buf = c.buf, .n = n, .base = base, .key = &key, .s = s, .dir = dir};
  __u64 chunks = (n + CHUNK - 1) / CHUNK;
  if (chunks > MAX_CHUNKS) {
    count(ST_LOST_BYTES, n - (__u64)MAX_CHUNKS * CHUNK);
    chunks = MAX_CHUNKS;
  }
  bpf_loop(chunks, emit_chunk, &cc, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter) { return on_enter(ctx, DIR_WRITE, 0); }
SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter) { return on_enter(ctx, DIR_WRITE, 1); }
SEC("uprobe")
int BPF_KPROBE(ssl_read_enter) { return on_enter(ctx, DIR_READ, 0); }
SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter) { return on_enter(ctx, DIR_READ, 1); }
SEC("uretprobe")
int BPF_KRETPROBE(ssl_return) { return on_return(ctx); }

/* SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME = 55, 0, name): SSL_set_tlsext_host_name, the SNI. */
SEC("uprobe")
int BPF_KPROBE(ssl_ctrl_enter, void *ssl, int cmd, long larg, void *parg) {
  if (cmd != 55 || !parg) return 0;
  __u64 id = bpf_get_current_pid_tgid();
  if (!traced(id >> 32)) return 0;
  struct rec *r = bpf_ringbuf_reserve(&events, HDR + SNI_MAX, 0);
  if (!r) {
    count(ST_DROPPED, 1);
    return 0;
  }
  struct skey key = {.pid = id >> 32, .ssl = (__u64)ssl};
  header(r, K_SNI, id, &key, NULL);
  long n = bpf_probe_read_user_str(r->data, SNI_MAX, parg);
  r->len = n > 0 ? n - 1 : 0;
  bpf_ringbuf_submit(r, 0);
  count(ST_RECORDS, 1);
  return 0;
}

/* Reads the TCP socket behind fd of the current task into s; 0 when fd is not an inet socket. */
static __always_inline int sock_tuple(int fd, struct sess *s) {
  struct task_struct *task = (struct task_struct *)bpf_get_current_task();
  struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
  unsigned int max = BPF_CORE_READ(task, files, fdt, max_fds);
  if (fd < 0 || (unsigned int)fd >= max) return 0;
  struct file *f = NULL;
  if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f) return 0;
  umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
  if ((mode & S_IFMT) != S_IFSOCK) return 0;
  struct socket *sock = BPF_CORE_READ(f, private_data);
  if (!sock) return 0;
  struct sock *sk = BPF_CORE_READ(sock, sk);
  if (!sk) return 0;
  __u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  if (family == AF_INET) {
    __u32 sa = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    __u32 da = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memset(s->saddr, 0, 16);
    __builtin_memset(s->daddr, 0, 16);
    __builtin_memcpy(s->saddr, &sa, 4);
    __builtin_memcpy(s->daddr, &da, 4);
  } else if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&s->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
    BPF_CORE_READ_INTO(&s->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
  } else {
    return 0;
  }
  s->family = family;
  s->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
  s->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  return 1;
}

static __always_inline void on_close(__u64 id, int fd) {
  struct fdkey fk = {.pid = id >> 32, .fd = fd};
  struct skey *kp = bpf_map_lookup_elem(&fd_sessions, &fk);
  if (!kp) return;
  struct skey key = *kp;
  bpf_map_delete_elem(&fd_sessions, &fk);
  struct sess *s = bpf_map_lookup_elem(&sessions, &key);
  emit_meta(K_CLOSE, id, &key, s);
  bpf_map_delete_elem(&sessions, &key);
  bpf_map_delete_elem(&muted, &key);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long nr) {
  if (nr != NR_WRITE && nr != NR_READ && nr != NR_SENDTO && nr != NR_RECVFROM && nr != NR_WRITEV && nr != NR_READV &&
      nr != NR_SENDMSG && nr != NR_RECVMSG && nr != NR_CLOSE)
    return 0;
  __u64 id = bpf_get_current_pid_tgid();
  int fd = (int)BPF_CORE_READ(regs, di);
  if (nr == NR_CLOSE) {
    on_close(id, fd);
    return 0;
  }
  struct skey key = {};
  struct call *c = bpf_map_lookup_elem(&active, &id);
  if (c) {
    key.pid = id >> 32;
    key.ssl = c->ssl;
  } else {
    /* Late binding: only the socket write that follows SSL_write (the application sending the record). */
    if (nr != NR_WRITE && nr != NR_WRITEV && nr != NR_SENDTO && nr != NR_SENDMSG) return 0;
    struct skey *pk = bpf_map_lookup_elem(&pending_bind, &id);
    if (!pk) return 0;
    key = *pk;
  }
  struct sess *s = bpf_map_lookup_elem(&sessions, &key);
  if (!s || s->bound) return 0;
  if (!sock_tuple(fd, s)) return 0;
  s->bound = 1;
  s->fd = fd;
  bpf_map_delete_elem(&pending_bind, &id);
  struct fdkey fk = {.pid = key.pid, .fd = fd};
  bpf_map_update_elem(&fd_sessions, &fk, &key, BPF_ANY);
  count(ST_BOUND, 1);
  emit_meta(K_BIND, id, &key, s);
  return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(process_fork, struct task_struct *parent, struct task_struct *child) {
  __u32 k = 0;
  struct oisp_settings *st = bpf_map_lookup_elem(&settings, &k);
  if (!st || !st->filter) return 0;
  __u32 ppid = parent->tgid;
  if (!bpf_map_lookup_elem(&traced_pids, &ppid)) return 0;
  __u32 pid = child->tgid;
  __u8 one = 1;
  bpf_map_update_elem(&traced_pids, &pid, &one, BPF_ANY);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task) {
  __u32 pid = task->tgid;
  if (task->pid != task->tgid) return 0; /* a thread, not the process */
  if (bpf_map_lookup_elem(&tls_pids, &pid)) {
    bpf_map_delete_elem(&tls_pids, &pid);
    __u64 id = ((__u64)pid << 32) | pid;
    emit_meta(K_EXIT, id, NULL, NULL);
  }
  bpf_map_delete_elem(&traced_pids, &pid);
  return 0;
}

/* A traced process ran a new program: userspace looks at its mappings for a TLS library soon after. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm) {
  __u32 pid = task->tgid;
  if (!traced(pid)) return 0;
  __u64 id = ((__u64)pid << 32) | pid;
  emit_meta(K_EXEC, id, NULL, NULL);
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
