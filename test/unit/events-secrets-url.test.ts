// Keys in URL queries are masked whatever their format (command lines carry them: curl "...?key=...").
import { expect, test } from "bun:test";
import { maskSecrets } from "../../src/events/secrets.ts";

test("?key=, &api_key=, ?token=, &sig= values are masked; the name and the rest of the URL stay", () => {
  const r = maskSecrets("curl https://h/v1beta/models/m:generateContent?key=abcdefgh12345&alt=sse https://h/x?a=1&api_key=Zz9_-.~xyzxyz https://h/t?token=0123456789 https://blob/c?sv=1&sig=AbCd%2BEfGh");
  expect(r.text).toBe(
    "curl https://h/v1beta/models/m:generateContent?key=[REDACTED:credential]&alt=sse https://h/x?a=1&api_key=[REDACTED:credential] https://h/t?token=[REDACTED:credential] https://blob/c?sv=1&sig=[REDACTED:credential]",
  );
  expect(r.findings).toEqual([{ type: "credential", count: 4 }]);
});

test("a Google key in ?key= is reported as a Google key; short values and other parameters are left alone", () => {
  expect(maskSecrets("https://h/y?key=AIzaSyE2eGeminiKey0123456789SECRETabcdX").text).toBe("https://h/y?key=[REDACTED:google_api_key]");
  expect(maskSecrets("https://h/y?key=short&monkey=abcdefghijkl").text).toBe("https://h/y?key=short&monkey=abcdefghijkl");
});

test("user:password options on a command line are masked (curl -u, --user, --aws-sigv4 with --user)", () => {
  const r = maskSecrets('curl -sS --aws-sigv4 aws:amz:us-east-1:bedrock --user AKIAE2ETESTKEY7EXAMP:wJalrXUtnFEMI/K7MDENG/bPx -u "bob:hunter22" --proxy-user=p:q https://h/');
  expect(r.text).toBe('curl -sS --aws-sigv4 aws:amz:us-east-1:bedrock --user [REDACTED:credential] -u "[REDACTED:credential]" --proxy-user=[REDACTED:credential] https://h/');
});

test("a bare user name after -u is not a secret", () => {
  expect(maskSecrets("mysql -u bob db").text).toBe("mysql -u bob db");
});
