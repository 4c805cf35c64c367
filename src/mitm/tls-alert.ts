// Reads the TLS alert a client sends when it refuses our certificate. Bun reports such a handshake
// failure with an unrelated error (BAD_PACKET_LENGTH), so the relay looks at the client's bytes itself.

const ALERT_NAMES: Record<number, string> = {
  0: "close_notify",
  10: "unexpected_message",
  20: "bad_record_mac",
  40: "handshake_failure",
  42: "bad_certificate",
  43: "unsupported_certificate",
  44: "certificate_revoked",
  45: "certificate_expired",
  46: "certificate_unknown",
  47: "illegal_parameter",
  48: "unknown_ca",
  49: "access_denied",
  50: "decode_error",
  51: "decrypt_error",
  70: "protocol_version",
  71: "insufficient_security",
  80: "internal_error",
  86: "inappropriate_fallback",
  90: "user_canceled",
  109: "missing_extension",
  110: "unsupported_extension",
  112: "unrecognized_name",
  116: "certificate_required",
  120: "no_application_protocol",
};

export interface TlsAlert {
  level: "warning" | "fatal";
  description: number;
  name: string;
  /** Sent after we had answered the ClientHello (our ServerHello went out first). */
  afterServerHello: boolean;
}

/** Alerts by which a client says it does not accept our certificate (RFC 8446 6.2). */
const CERTIFICATE_REJECTIONS = new Set([42, 43, 44, 45, 46, 48]);

/**
 * Whether an alert is evidence that the client rejected our certificate: a certificate alert, sent after our
 * ServerHello (a hostile peer cannot send it with its ClientHello and hang up; it has to take our answer).
 */
export function rejectsCertificate(alert: TlsAlert | undefined): boolean {
  return !!alert && alert.afterServerHello && CERTIFICATE_REJECTIONS.has(alert.description);
}

export function alertName(description: number): string {
  return ALERT_NAMES[description] ?? `alert_${description}`;
}

/**
 * Watches the client's bytes during our server handshake for a plaintext alert record. Only the
 * start of each record is inspected, so it is cheap and stops after the handshake (see done()).
 */
export class AlertWatcher {
  private header: number[] = [];
  private skip = 0;
  private stopped = false;
  alert?: TlsAlert;
  /** Bytes seen from the client after its ClientHello (to tell "closed silently" from "sent something"). */
  bytesSeen = 0;

  /** `afterServerHello`: our ServerHello had gone out before this chunk arrived. */
  push(chunk: Uint8Array, afterServerHello = false): void {
    if (this.stopped || this.alert) return;
    this.bytesSeen += chunk.length;
    let i = 0;
    while (i < chunk.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - i);
        this.skip -= n;
        i += n;
        continue;
      }
      this.header.push(chunk[i++]!);
      const h = this.header;
      if (h.length === 5) {
        const len = (h[3]! << 8) | h[4]!;
        if (h[0] === 0x15 && len === 2) continue; // an alert: read its two body bytes
        this.skip = len;
        this.header = [];
      } else if (h.length === 7) {
        this.alert = { level: h[5] === 2 ? "fatal" : "warning", description: h[6]!, name: alertName(h[6]!), afterServerHello };
        return;
      }
    }
  }

  done(): void {
    this.stopped = true;
  }
}
