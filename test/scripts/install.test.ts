// scripts/install.sh on small hand-made archives (the real release archives: test/e2e/release.e2e.test.ts): a binary
// that does not run, and on macOS (its uname, xattr and codesign stood in by scripts on PATH) the quarantine attribute
// and a signature that does not verify.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd, type Finished } from "../support/process.ts";

const INSTALL = join(import.meta.dir, "..", "..", "scripts", "install.sh");
const tmp = mkdtempSync(join(tmpdir(), "memproxy-install-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
const script = (path: string, text: string) => {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
  return path;
};

/** An archive memproxy-9.9.9-<platform>.tar.gz (and its .sha256) whose "memproxy" is the given shell script. */
function archive(platform: string, binary: string): string {
  const dir = mkdtempSync(join(tmp, "archive-"));
  const top = join(dir, `memproxy-9.9.9-${platform}`);
  mkdirSync(top);
  script(join(top, "memproxy"), binary);
  writeFileSync(join(top, "memproxy.sha256"), `${sha256(join(top, "memproxy"))}  memproxy\n`);
  const path = join(dir, `memproxy-9.9.9-${platform}.tar.gz`);
  expect(Bun.spawnSync(["tar", "-czf", path, "-C", dir, `memproxy-9.9.9-${platform}`]).exitCode).toBe(0);
  writeFileSync(`${path}.sha256`, `${sha256(path)}  memproxy-9.9.9-${platform}.tar.gz\n`);
  return path;
}

/** install.sh with `args`, on `path`, with a HOME of its own. */
function install(args: string[], path: string = process.env.PATH!): Promise<Finished> {
  return runToEnd(["sh", INSTALL, ...args], { env: { PATH: path, HOME: join(tmp, "home") } });
}

const WORKS = `#!/bin/sh\necho "memproxy 9.9.9 (commit abc1234, built 2026-11-28, bun 1.4.5)"\n`;
const host = `${process.platform === "darwin" ? "darwin" : "linux"}-${process.arch}`;

describe("install.sh", () => {
  test("a binary that does not run here replaces nothing: the installed one stays, and the error says why", async () => {
    const bin = join(tmp, "keep");
    expect((await install(["--bin-dir", bin, archive(host, WORKS)])).code).toBe(0);
    const before = readFileSync(join(bin, "memproxy"), "utf8");

    const r = await install(["--bin-dir", bin, archive(host, `#!/bin/sh\necho "Exec format error" >&2\nexit 126\n`)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`the memproxy binary does not run on this machine (${host}): Exec format error`);
    expect(r.stderr).toContain("Nothing was installed.");
    expect(readFileSync(join(bin, "memproxy"), "utf8")).toBe(before);
    expect(existsSync(join(bin, ".memproxy.new"))).toBe(false);
  });

  test("reports the version line the binary prints", async () => {
    const bin = join(tmp, "version");
    const r = await install(["--bin-dir", bin, archive(host, WORKS)]);
    expect(r.stdout).toContain(`installed memproxy 9.9.9 (commit abc1234, built 2026-11-28, bun 1.4.5) to ${bin}/memproxy\n`);
    const bare = await install(["--bin-dir", bin, archive(host, `#!/bin/sh\necho 9.9.9\n`)]);
    expect(bare.stdout).toContain(`installed memproxy 9.9.9 to ${bin}/memproxy\n`);
  });

  test("the README sections it points to exist", async () => {
    const r = await install(["--bin-dir", join(tmp, "pointers"), archive(host, WORKS)]);
    const readme = readFileSync(join(import.meta.dir, "..", "..", "README.md"), "utf8");
    const pointed = [...r.stdout.matchAll(/see README: ([^)\n]+)/g)].map((m) => m[1]!.trim());
    expect(pointed.length).toBeGreaterThan(0);
    for (const section of pointed) expect([section, readme.includes(`## ${section}\n`)]).toEqual([section, true]);
  });

  describe("on macOS", () => {
    /** A PATH on which uname says Darwin/arm64, and xattr and codesign log their arguments (codesign exits `verify`). */
    function mac(verify: number) {
      const shims = mkdtempSync(join(tmp, "mac-"));
      const log = join(shims, "calls.log");
      script(join(shims, "uname"), `#!/bin/sh\ncase "$1" in -s) echo Darwin ;; -m) echo arm64 ;; esac\n`);
      script(join(shims, "xattr"), `#!/bin/sh\necho "xattr $*" >> "${log}"\n`);
      script(join(shims, "codesign"), `#!/bin/sh\necho "codesign $*" >> "${log}"\n[ ${verify} = 0 ] || echo "invalid signature (code or signature have been modified)" >&2\nexit ${verify}\n`);
      return { path: `${shims}:${process.env.PATH}`, calls: () => (existsSync(log) ? readFileSync(log, "utf8") : "") };
    }

    test("clears the quarantine attribute and checks the signature before installing", async () => {
      const shims = mac(0);
      const bin = join(tmp, "mac-ok");
      const r = await install(["--bin-dir", bin, archive("darwin-arm64", WORKS)], shims.path);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(shims.calls()).toBe(`xattr -d com.apple.quarantine ${bin}/.memproxy.new\ncodesign --verify --strict ${bin}/.memproxy.new\n`);
      expect(existsSync(join(bin, "memproxy"))).toBe(true);
    });

    test("a signature that does not verify is refused, and nothing is installed", async () => {
      const shims = mac(1);
      const bin = join(tmp, "mac-bad");
      const r = await install(["--bin-dir", bin, archive("darwin-arm64", WORKS)], shims.path);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("the memproxy binary's code signature does not verify (invalid signature (code or signature have been modified)): macOS would not run it.");
      expect(existsSync(join(bin, "memproxy"))).toBe(false);
      expect(existsSync(join(bin, ".memproxy.new"))).toBe(false);
    });
  });
});
