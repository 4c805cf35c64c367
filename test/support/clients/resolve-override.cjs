// Test-only DNS override for Node clients (NODE_OPTIONS=--require): OISP_TEST_RESOLVE="host=addr,..." sends
// those hosts to a local fake provider while SNI and Host stay the real API's, as curl --resolve does.
const dns = require("node:dns");
const map = new Map(
  (process.env.OISP_TEST_RESOLVE || "")
    .split(",")
    .filter((p) => p.includes("="))
    .map((p) => p.split("=", 2)),
);
if (map.size) {
  const lookup = dns.lookup;
  dns.lookup = function (host, options, cb) {
    return lookup.call(this, map.get(host) || host, options, cb);
  };
}
