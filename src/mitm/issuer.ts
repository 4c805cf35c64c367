// What interception needs from the CA: a leaf certificate for a host name. src/ca provides it; tests use
// their own CA. Kept as a tiny interface so the relay does not depend on how certificates are made.
export interface LeafIssuer {
  /** `cert` is the leaf followed by the CA certificate, PEM; `key` the leaf's private key, PEM. */
  leafFor(hostname: string): Promise<{ cert: string; key: string }>;
}
