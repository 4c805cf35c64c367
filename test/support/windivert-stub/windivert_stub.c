/* A stand-in for WinDivert.dll (WinDivert 2.2 exports and calling conventions) so the real bun:ffi
 * bindings and the packet worker run in tests without the driver, on Linux (gcc, .so) and under Wine
 * (x86_64-w64-mingw32-gcc, WinDivert.dll). Never shipped.
 *
 * Behaviour, driven by files in $WINDIVERT_STUB_DIR:
 *   recv-<layer>   packets to "capture", appended by the test; read like `tail -f`.
 *   sent-<layer>   packets the program re-injected (WinDivertSendEx), appended here.
 *   calls.log      one line per Open/SetParam/Shutdown/Close call.
 * Record format in recv-/sent- files: UINT32 little-endian packet length, the 80-byte
 * WINDIVERT_ADDRESS, then the packet bytes.
 * $WINDIVERT_STUB_OPEN_ERROR=<code> makes WinDivertOpen fail with that Win32 error (5 = access denied).
 * $WINDIVERT_STUB_LOG_THREAD=1 ends each calls.log line with " thread=<id>" (the calling OS thread).
 * $WINDIVERT_STUB_TUN=<ifname> (Linux): the NETWORK layer is also backed by that TUN device, which plays
 *   the machine's network stack: every packet the kernel routes into the TUN is "captured" as outbound;
 *   packets sent back with Outbound=0 are written into the TUN (the kernel receives them, as Windows does
 *   with an inbound injection); packets sent with Outbound=1 leave for the (absent) wire: logged only.
 * RecvEx blocks until at least one record is available or WinDivertShutdown is called (then it fails
 * with ERROR_NO_DATA, as the real driver does once the queue is drained). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <stdarg.h>

#ifdef _WIN32
#include <windows.h>
#include <io.h>
#define EXPORT __declspec(dllexport)
#define sleep_ms(ms) Sleep(ms)
#define open_ro(p) _open((p), _O_RDONLY | _O_BINARY)
#define read_fd _read
#define close_fd _close
static void set_error(unsigned e) { SetLastError(e); }
static unsigned long thread_id(void) { return (unsigned long)GetCurrentThreadId(); }
#else
#include <unistd.h>
#include <sys/syscall.h>
#include <time.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/if_tun.h>
typedef int BOOL;
typedef void *HANDLE;
typedef unsigned int UINT;
#define TRUE 1
#define FALSE 0
#define EXPORT __attribute__((visibility("default")))
#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)
static void sleep_ms(int ms) { struct timespec t = {0, ms * 1000000L}; nanosleep(&t, NULL); }
#define open_ro(p) open((p), O_RDONLY)
#define read_fd read
#define close_fd close
static unsigned long thread_id(void) { return (unsigned long)syscall(SYS_gettid); }
static __thread unsigned last_error;
static void set_error(unsigned e) { last_error = e; }
EXPORT unsigned WinDivertStubLastError(void) { return last_error; }
#endif

#ifndef _WIN32
#define ERROR_INVALID_PARAMETER 87
#define ERROR_INSUFFICIENT_BUFFER 122
#define ERROR_NO_DATA 232
#endif
#define ADDR_SIZE 80
#define BUF_CAP (1 << 20)

/* The address layout, written as C bitfields so a test can compare the compiler's layout with the
 * DataView reading in ffi/windivert-address.ts. */
typedef struct {
  int64_t Timestamp;
  uint32_t Layer : 8, Event : 8, Sniffed : 1, Outbound : 1, Loopback : 1, Impostor : 1, IPv6 : 1,
      IPChecksum : 1, TCPChecksum : 1, UDPChecksum : 1, Reserved1 : 8;
  uint32_t Reserved2;
  union {
    struct { uint32_t IfIdx, SubIfIdx; } Network;
    struct {
      uint64_t EndpointId, ParentEndpointId;
      uint32_t ProcessId, LocalAddr[4], RemoteAddr[4];
      uint16_t LocalPort, RemotePort;
      uint8_t Protocol;
    } Socket;
    uint8_t Reserved3[64];
  };
} STUB_ADDRESS;

typedef char assert_address_size[sizeof(STUB_ADDRESS) == ADDR_SIZE ? 1 : -1];

struct stub_handle {
  int layer;
  int in_fd;
  int tun_fd;
  char in_path[1024];
  FILE *out;
  volatile int shutdown;
  unsigned char *buf;
  size_t have;
};

static void path_for(char *out, size_t cap, const char *name) {
  const char *dir = getenv("WINDIVERT_STUB_DIR");
  snprintf(out, cap, "%s/%s", dir ? dir : ".", name);
}

static void log_call(const char *fmt, ...) {
  char p[1024];
  path_for(p, sizeof p, "calls.log");
  FILE *f = fopen(p, "ab");
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  const char *threads = getenv("WINDIVERT_STUB_LOG_THREAD");
  if (threads && *threads) fprintf(f, " thread=%lu", thread_id());
  fputc('\n', f);
  fclose(f);
}

EXPORT HANDLE WinDivertOpen(const char *filter, int layer, int16_t priority, uint64_t flags) {
  const char *fail = getenv("WINDIVERT_STUB_OPEN_ERROR");
  if (fail && *fail) {
    set_error((unsigned)atoi(fail));
    return INVALID_HANDLE_VALUE;
  }
  if (!filter || layer < 0 || layer > 4) {
    set_error(ERROR_INVALID_PARAMETER);
    return INVALID_HANDLE_VALUE;
  }
  struct stub_handle *h = calloc(1, sizeof *h);
  h->layer = layer;
  h->buf = malloc(BUF_CAP);
  char p[1024], name[32];
  snprintf(name, sizeof name, "recv-%d", layer);
  path_for(p, sizeof p, name);
  snprintf(h->in_path, sizeof h->in_path, "%s", p);
  h->in_fd = open_ro(p); /* may not exist yet: retried on each receive */
  snprintf(name, sizeof name, "sent-%d", layer);
  path_for(p, sizeof p, name);
  h->out = fopen(p, "ab");
  h->tun_fd = -1;
#ifndef _WIN32
  const char *tun = getenv("WINDIVERT_STUB_TUN");
  if (tun && *tun && layer == 0) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", tun);
    h->tun_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK);
    if (h->tun_fd < 0 || ioctl(h->tun_fd, TUNSETIFF, &ifr) < 0) {
      if (h->tun_fd >= 0) close(h->tun_fd);
      free(h->buf);
      free(h);
      set_error(2);
      return INVALID_HANDLE_VALUE;
    }
  }
#endif
  log_call("open layer=%d priority=%d flags=%llu filter=%s", layer, priority, (unsigned long long)flags, filter);
  return (HANDLE)h;
}

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Bytes of whole records available at the front of the buffer (at least one), or 0. */
static size_t pull(struct stub_handle *h) {
#ifndef _WIN32
  while (h->tun_fd >= 0 && h->have + 4 + ADDR_SIZE + 65536 <= BUF_CAP) {
    unsigned char *rec = h->buf + h->have;
    int n = (int)read(h->tun_fd, rec + 4 + ADDR_SIZE, 65536);
    if (n <= 0) break;
    STUB_ADDRESS a;
    memset(&a, 0, sizeof a);
    a.Outbound = 1;
    a.IPv6 = (rec[4 + ADDR_SIZE] >> 4) == 6;
    a.IPChecksum = a.TCPChecksum = a.UDPChecksum = 1;
    rec[0] = n & 0xff, rec[1] = n >> 8 & 0xff, rec[2] = rec[3] = 0;
    memcpy(rec + 4, &a, ADDR_SIZE);
    h->have += 4 + ADDR_SIZE + (size_t)n;
  }
#endif
  if (h->in_fd < 0) h->in_fd = open_ro(h->in_path);
  if (h->in_fd >= 0 && h->have < BUF_CAP) {
#ifdef _WIN32
    /* The CRT remembers end-of-file: once a read returned 0, later reads return 0 without looking, even
     * after the test appended records. Seeking clears that flag. */
    _lseek(h->in_fd, 0, SEEK_CUR);
#endif
    int n = read_fd(h->in_fd, h->buf + h->have, (unsigned)(BUF_CAP - h->have));
    if (n > 0) h->have += (size_t)n;
  }
  return h->have >= 4 + ADDR_SIZE && h->have >= 4 + ADDR_SIZE + le32(h->buf) ? 1 : 0;
}

EXPORT BOOL WinDivertRecvEx(HANDLE handle, void *pPacket, UINT packetLen, UINT *pRecvLen, uint64_t flags,
                            void *pAddr, UINT *pAddrLen, void *lpOverlapped) {
  struct stub_handle *h = (struct stub_handle *)handle;
  (void)flags;
  if (!h || !pAddr || lpOverlapped) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  UINT maxAddrs = pAddrLen ? *pAddrLen / ADDR_SIZE : 1;
  /* A safety net for tests: never block longer than $WINDIVERT_STUB_MAX_WAIT_MS (20 s), so a broken test
   * cannot hang CI. */
  const char *mw = getenv("WINDIVERT_STUB_MAX_WAIT_MS");
  int max_wait = mw && *mw ? atoi(mw) : 20000;
  for (int waited = 0; !pull(h); waited += 2) {
    if (h->shutdown || waited > max_wait) { set_error(ERROR_NO_DATA); return FALSE; }
    sleep_ms(2);
  }
  size_t off = 0, used = 0;
  UINT n = 0;
  while (n < maxAddrs && off + 4 + ADDR_SIZE <= h->have) {
    uint32_t len = le32(h->buf + off);
    if (off + 4 + ADDR_SIZE + len > h->have) break;
    if (used + len > packetLen) {
      if (n == 0) { set_error(ERROR_INSUFFICIENT_BUFFER); return FALSE; }
      break;
    }
    memcpy((unsigned char *)pAddr + (size_t)n * ADDR_SIZE, h->buf + off + 4, ADDR_SIZE);
    if (pPacket) memcpy((unsigned char *)pPacket + used, h->buf + off + 4 + ADDR_SIZE, len);
    used += len;
    off += 4 + ADDR_SIZE + len;
    n++;
  }
  memmove(h->buf, h->buf + off, h->have - off);
  h->have -= off;
  if (pRecvLen) *pRecvLen = (UINT)used;
  if (pAddrLen) *pAddrLen = n * ADDR_SIZE;
  return TRUE;
}

static uint32_t ip_len(const unsigned char *p, UINT avail) {
  if (avail < 20) return 0;
  if ((p[0] >> 4) == 4) return (uint32_t)p[2] << 8 | p[3];
  if ((p[0] >> 4) == 6 && avail >= 40) return 40 + ((uint32_t)p[4] << 8 | p[5]);
  return 0;
}

EXPORT BOOL WinDivertSendEx(HANDLE handle, const void *pPacket, UINT packetLen, UINT *pSendLen, uint64_t flags,
                            const void *pAddr, UINT addrLen, void *lpOverlapped) {
  struct stub_handle *h = (struct stub_handle *)handle;
  (void)flags;
  if (!h || !pPacket || !pAddr || lpOverlapped || addrLen < ADDR_SIZE || h->shutdown & 2) {
    set_error(ERROR_INVALID_PARAMETER);
    return FALSE;
  }
  const unsigned char *p = pPacket;
  UINT off = 0;
  for (UINT i = 0; i < addrLen / ADDR_SIZE; i++) {
    uint32_t len = ip_len(p + off, packetLen - off);
    if (len == 0 || off + len > packetLen) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
    unsigned char hdr[4] = {len & 0xff, len >> 8 & 0xff, len >> 16 & 0xff, len >> 24};
#ifndef _WIN32
    const STUB_ADDRESS *a = (const STUB_ADDRESS *)((const unsigned char *)pAddr + (size_t)i * ADDR_SIZE);
    if (h->tun_fd >= 0 && !a->Outbound && write(h->tun_fd, p + off, len) < 0) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
#endif
    if (h->out) {
      fwrite(hdr, 1, 4, h->out);
      fwrite((const unsigned char *)pAddr + (size_t)i * ADDR_SIZE, 1, ADDR_SIZE, h->out);
      fwrite(p + off, 1, len, h->out);
    }
    off += len;
  }
  if (h->out) fflush(h->out);
  if (pSendLen) *pSendLen = off;
  return TRUE;
}

EXPORT BOOL WinDivertShutdown(HANDLE handle, int how) {
  struct stub_handle *h = (struct stub_handle *)handle;
  if (!h) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  /* Logged before the flag is set: a worker blocked in recv sees the flag, returns and may close (and free)
     the handle at once, and its "close" line must not come before this call's "shutdown" line. */
  log_call("shutdown layer=%d how=%d", h->layer, how);
  h->shutdown |= how;
  return TRUE;
}

EXPORT BOOL WinDivertClose(HANDLE handle) {
  struct stub_handle *h = (struct stub_handle *)handle;
  if (!h) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  h->shutdown = 3;
  if (h->in_fd >= 0) close_fd(h->in_fd);
#ifndef _WIN32
  if (h->tun_fd >= 0) close(h->tun_fd);
#endif
  if (h->out) fclose(h->out);
  log_call("close layer=%d", h->layer);
  free(h->buf);
  free(h);
  return TRUE;
}

EXPORT BOOL WinDivertSetParam(HANDLE handle, int param, uint64_t value) {
  if (!handle || param < 0 || param > 2) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  log_call("param %d %llu", param, (unsigned long long)value);
  return TRUE;
}

EXPORT BOOL WinDivertGetParam(HANDLE handle, int param, uint64_t *pValue) {
  if (!handle || !pValue) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  *pValue = param == 3 ? 2 : param == 4 ? 2 : 0;
  return TRUE;
}

/* ---- helpers: written independently of the TypeScript code so they can cross-check it ---- */

static uint32_t sum_bytes(const unsigned char *p, size_t n, uint32_t s) {
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  return s;
}
static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

struct parsed {
  int v6;
  unsigned hl, total, proto;
  unsigned char *l4;
};

static int parse(unsigned char *p, UINT len, struct parsed *o) {
  if (len < 20) return 0;
  o->v6 = (p[0] >> 4) == 6;
  if (!o->v6 && (p[0] >> 4) != 4) return 0;
  if (o->v6) {
    if (len < 40) return 0;
    o->hl = 40;
    o->total = 40 + ((unsigned)p[4] << 8 | p[5]);
    o->proto = p[6];
  } else {
    o->hl = (p[0] & 15) * 4u;
    o->total = (unsigned)p[2] << 8 | p[3];
    o->proto = p[9];
  }
  if (o->total > len || o->hl > o->total) return 0;
  o->l4 = p + o->hl;
  return 1;
}

EXPORT BOOL WinDivertHelperCalcChecksums(void *pPacket, UINT packetLen, void *pAddr, uint64_t flags) {
  struct parsed x;
  unsigned char *p = pPacket;
  if (!p || !parse(p, packetLen, &x)) { set_error(ERROR_INVALID_PARAMETER); return FALSE; }
  if (!x.v6 && !(flags & 1)) {
    p[10] = p[11] = 0;
    uint16_t c = fold(sum_bytes(p, x.hl, 0));
    p[10] = c >> 8, p[11] = c & 0xff;
  }
  unsigned l4len = x.total - x.hl;
  int field = x.proto == 6 && !(flags & 8) && l4len >= 20 ? 16 : x.proto == 17 && !(flags & 16) && l4len >= 8 ? 6 : -1;
  if (field >= 0) {
    x.l4[field] = x.l4[field + 1] = 0;
    uint32_t s = x.v6 ? sum_bytes(p + 8, 32, 0) : sum_bytes(p + 12, 8, 0);
    s += x.proto + l4len;
    uint16_t c = fold(sum_bytes(x.l4, l4len, s));
    if (c == 0 && x.proto == 17) c = 0xffff;
    x.l4[field] = c >> 8, x.l4[field + 1] = c & 0xff;
  }
  if (pAddr) {
    STUB_ADDRESS *a = pAddr;
    a->IPChecksum = !x.v6;
    a->TCPChecksum = x.proto == 6;
    a->UDPChecksum = x.proto == 17;
  }
  return TRUE;
}

EXPORT BOOL WinDivertHelperParsePacket(const void *pPacket, UINT packetLen, void **ppIpHdr, void **ppIpv6Hdr,
                                       uint8_t *pProtocol, void **ppIcmpHdr, void **ppIcmpv6Hdr, void **ppTcpHdr,
                                       void **ppUdpHdr, void **ppData, UINT *pDataLen, void **ppNext, UINT *pNextLen) {
  struct parsed x;
  unsigned char *p = (unsigned char *)pPacket;
  if (ppIpHdr) *ppIpHdr = NULL;
  if (ppIpv6Hdr) *ppIpv6Hdr = NULL;
  if (ppIcmpHdr) *ppIcmpHdr = NULL;
  if (ppIcmpv6Hdr) *ppIcmpv6Hdr = NULL;
  if (ppTcpHdr) *ppTcpHdr = NULL;
  if (ppUdpHdr) *ppUdpHdr = NULL;
  if (ppData) *ppData = NULL;
  if (pDataLen) *pDataLen = 0;
  if (ppNext) *ppNext = NULL;
  if (pNextLen) *pNextLen = 0;
  if (!p || !parse(p, packetLen, &x)) return FALSE;
  if (x.v6 && ppIpv6Hdr) *ppIpv6Hdr = p;
  if (!x.v6 && ppIpHdr) *ppIpHdr = p;
  if (pProtocol) *pProtocol = (uint8_t)x.proto;
  unsigned l4len = x.total - x.hl, hdr = 0;
  if (x.proto == 6 && l4len >= 20) { hdr = (x.l4[12] >> 4) * 4u; if (ppTcpHdr) *ppTcpHdr = x.l4; }
  else if (x.proto == 17 && l4len >= 8) { hdr = 8; if (ppUdpHdr) *ppUdpHdr = x.l4; }
  if (hdr > l4len) return FALSE;
  if (ppData && l4len > hdr) *ppData = x.l4 + hdr;
  if (pDataLen) *pDataLen = l4len - hdr;
  if (packetLen > x.total) {
    if (ppNext) *ppNext = p + x.total;
    if (pNextLen) *pNextLen = packetLen - x.total;
  }
  return TRUE;
}

/* Test hook: the fields of an address as the C compiler lays the struct out, as text. */
EXPORT int WinDivertStubDescribeAddress(const void *pAddr, char *out, UINT cap) {
  const STUB_ADDRESS *a = pAddr;
  return snprintf(out, cap,
                  "ts=%lld layer=%u event=%u sniffed=%u outbound=%u loopback=%u impostor=%u ipv6=%u ipc=%u tcpc=%u udpc=%u "
                  "if=%u sub=%u pid=%u lport=%u rport=%u proto=%u ep=%llu",
                  (long long)a->Timestamp, a->Layer, a->Event, a->Sniffed, a->Outbound, a->Loopback, a->Impostor, a->IPv6,
                  a->IPChecksum, a->TCPChecksum, a->UDPChecksum, a->Network.IfIdx, a->Network.SubIfIdx,
                  a->Socket.ProcessId, a->Socket.LocalPort, a->Socket.RemotePort, a->Socket.Protocol,
                  (unsigned long long)a->Socket.EndpointId);
}
