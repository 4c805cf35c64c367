import { expect, test } from "bun:test";
import { parseListen } from "../../src/util/args.ts";

test("parseListen: a bare number is a port (redirect --port 8443 once became host 844, port 3)", () => {
  expect(parseListen("8443", "--port")).toEqual({ host: "127.0.0.1", port: 8443 });
  expect(parseListen("18443", "--port")).toEqual({ host: "127.0.0.1", port: 18443 });
  expect(parseListen(":8080", "--listen")).toEqual({ host: "127.0.0.1", port: 8080 });
  expect(parseListen("0.0.0.0:0", "--listen")).toEqual({ host: "0.0.0.0", port: 0 });
  expect(parseListen("[::1]:80", "--listen")).toEqual({ host: "::1", port: 80 });
  expect(() => parseListen("70000", "--port")).toThrow('--port: expected HOST:PORT, got "70000"');
  expect(() => parseListen("host:", "--listen")).toThrow();
});
