// Sends a Node program's fetch through the OISP proxy. Bun and Node >= 24 (NODE_USE_ENV_PROXY=1) honour
// HTTPS_PROXY by themselves; Node 20/22's built-in fetch ignores it, so there we install undici's
// ProxyAgent as the global dispatcher (npm install undici). The OISP CA comes from NODE_EXTRA_CA_CERTS,
// which Node and Bun both read at start-up. Import this first: `import "./proxy-setup.mjs";`
const proxy = process.env.HTTPS_PROXY ?? process.env.https_proxy;
if (proxy && !process.versions.bun) {
  const { ProxyAgent, setGlobalDispatcher } = await import("undici");
  setGlobalDispatcher(new ProxyAgent(proxy));
}
