// scripts/codesign.ts without rcodesign: signing settings from the environment, finding rcodesign, the notary zip.
// Signing and verifying real binaries: test/e2e/release.e2e.test.ts.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findRcodesign, RCODESIGN_VERSION, signingSettings, storedZip } from "../../scripts/codesign.ts";
import { runToEnd } from "../support/process.ts";

const tmp = mkdtempSync(join(tmpdir(), "memproxy-codesign-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("signingSettings", () => {
  test("ad hoc when nothing is set; a Developer ID and notarisation when their variables are", () => {
    expect(signingSettings({})).toEqual({ p12File: undefined, p12PasswordFile: undefined, p12Password: undefined, notaryApiKeyFile: undefined });
    expect(signingSettings({ MEMPROXY_SIGN_P12_FILE: "/k/id.p12", MEMPROXY_SIGN_P12_PASSWORD_FILE: "/k/pw", MEMPROXY_NOTARY_API_KEY_FILE: "/k/key.json" })).toEqual({
      p12File: "/k/id.p12",
      p12PasswordFile: "/k/pw",
      p12Password: undefined,
      notaryApiKeyFile: "/k/key.json",
    });
  });

  test("notarising or a password without a certificate is refused, naming the variable to set", () => {
    expect(() => signingSettings({ MEMPROXY_NOTARY_API_KEY_FILE: "/k/key.json" })).toThrow("MEMPROXY_SIGN_P12_FILE is not");
    expect(() => signingSettings({ MEMPROXY_SIGN_P12_PASSWORD: "secret" })).toThrow("set it to your Developer ID Application certificate");
    // An empty variable is an unset one.
    expect(signingSettings({ MEMPROXY_SIGN_P12_FILE: "", MEMPROXY_NOTARY_API_KEY_FILE: "" }).p12File).toBeUndefined();
  });

  test("the password never appears in an error", () => {
    let message = "";
    try {
      signingSettings({ MEMPROXY_SIGN_P12_PASSWORD: "hunter2-secret" });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).not.toBe("");
    expect(message).not.toContain("hunter2");
  });
});

describe("findRcodesign", () => {
  const executable = (path: string) => {
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, "#!/bin/sh\n");
    chmodSync(path, 0o755);
    return path;
  };

  test("MEMPROXY_RCODESIGN_BIN first, then the cache setup-release-tools.sh fills, then PATH", () => {
    const cache = join(tmp, "cache");
    const onPath = executable(join(tmp, "path", "rcodesign"));
    const env = { MEMPROXY_CACHE_DIR: cache, PATH: join(tmp, "path") };
    expect(findRcodesign(env)).toBe(onPath);
    const cached = executable(join(cache, `rcodesign-${RCODESIGN_VERSION}`, "bin", "rcodesign"));
    expect(findRcodesign(env)).toBe(cached);
    const notarize = executable(join(cache, `rcodesign-${RCODESIGN_VERSION}-notarize`, "bin", "rcodesign"));
    expect(findRcodesign(env)).toBe(notarize);
    expect(findRcodesign({ ...env, MEMPROXY_RCODESIGN_BIN: "/opt/rcodesign" })).toBe("/opt/rcodesign");
    expect(findRcodesign({ MEMPROXY_CACHE_DIR: join(tmp, "empty"), PATH: join(tmp, "nowhere") })).toBeUndefined();
  });

  test("the version is the one scripts/setup-release-tools.sh pins", () => {
    expect(readFileSync(join(import.meta.dir, "..", "..", "scripts", "setup-release-tools.sh"), "utf8")).toContain(`RCODESIGN_VERSION="${RCODESIGN_VERSION}"`);
    expect(RCODESIGN_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe.skipIf(!Bun.which("python3"))("storedZip", () => {
  test("a zip that another implementation (Python's zipfile) reads back intact, as an executable file", async () => {
    const data = new Uint8Array(70_000).map((_, i) => (i * 7919) % 251);
    const zip = join(tmp, "one.zip");
    writeFileSync(zip, storedZip("memproxy", data));
    const out = join(tmp, "unzipped");
    const script = [
      "import sys, zipfile, os",
      "z = zipfile.ZipFile(sys.argv[1])",
      "assert z.testzip() is None",
      "info = z.getinfo('memproxy')",
      "print(oct(info.external_attr >> 16), info.compress_type, info.file_size)",
      "z.extract(info, sys.argv[2])",
      "os.chmod(os.path.join(sys.argv[2], 'memproxy'), (info.external_attr >> 16) & 0o777)",
    ].join("\n");
    const { stdout, stderr, code } = await runToEnd(["python3", "-c", script, zip, out]);
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout.trim()).toBe(`0o100755 0 ${data.length}`);
    expect(new Uint8Array(readFileSync(join(out, "memproxy")))).toEqual(data);
    expect(statSync(join(out, "memproxy")).mode & 0o777).toBe(0o755);
  });
});
