// scripts/release.ts and scripts/install.sh: one real release of the host's target, checked end to end.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VERSION } from "../src/version.ts";

const ROOT = join(import.meta.dir, "..");
const HOST = `${process.platform}-${process.arch}`;
// A target this machine is not, so that Bun has to fetch its runtime.
const CROSS = HOST === "darwin-arm64" ? "linux-arm64" : "darwin-arm64";
const ARCHIVE = `memproxy-${VERSION}-${HOST}.tar.gz`;

const tmp = mkdtempSync(join(tmpdir(), "memproxy-release-"));
const out = join(tmp, "release");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function exec(cmd: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}) {
  const proc = Bun.spawn(cmd, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { stdout, stderr, code };
}

/** Environment in which Bun cannot download a cross target's runtime: an empty cache and a proxy that hangs up. */
function offlineEnv(listener: { port: number }) {
  const cache = mkdtempSync(join(tmp, "cache-"));
  const proxy = `http://127.0.0.1:${listener.port}`;
  return { ...process.env, BUN_INSTALL_CACHE_DIR: cache, HTTPS_PROXY: proxy, https_proxy: proxy, HTTP_PROXY: proxy, http_proxy: proxy };
}
const hangUp = () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { open: (s) => void s.end(), data() {} } });

const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

let releasing: Promise<{ stdout: string; stderr: string; code: number }> | undefined;
/** Runs one release (the host's target, and a cross target Bun cannot fetch) once for all the tests here. */
function release() {
  releasing ??= (async () => {
    const listener = hangUp();
    try {
      return await exec([process.execPath, "scripts/release.ts", "--targets", `host,${CROSS}`, "--out", out], { env: offlineEnv(listener) });
    } finally {
      listener.stop(true);
    }
  })();
  return releasing;
}

describe("scripts/release.ts", () => {
  test("builds the host's archive and skips, with the reason, a target whose runtime cannot be fetched", async () => {
    const r = await release();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`skipped ${CROSS}: bun could not fetch its runtime`);
    expect(r.stdout).toContain("Failed to download");
    expect(existsSync(join(out, ARCHIVE))).toBe(true);
    expect(existsSync(join(out, `memproxy-${VERSION}-${CROSS}.tar.gz`))).toBe(false);
  });

  test("the archive has a checksum file in sha256sum's format, also listed in SHA256SUMS", async () => {
    await release();
    const line = `${sha256(join(out, ARCHIVE))}  ${ARCHIVE}\n`;
    expect(readFileSync(join(out, `${ARCHIVE}.sha256`), "utf8")).toBe(line);
    expect(readFileSync(join(out, "SHA256SUMS"), "utf8")).toBe(line);
    expect(readFileSync(join(out, "install.sh"), "utf8")).toBe(readFileSync(join(ROOT, "scripts", "install.sh"), "utf8"));
  });

  test("the archive holds the binary with its checksum, config.example.yaml and install.sh; the binary reports the version", async () => {
    await release();
    const dir = mkdtempSync(join(tmp, "extract-"));
    const untar = await exec(["tar", "-xzf", join(out, ARCHIVE), "-C", dir]);
    expect(untar.code).toBe(0);
    const top = join(dir, `memproxy-${VERSION}-${HOST}`);
    expect(readFileSync(join(top, "memproxy.sha256"), "utf8")).toBe(`${sha256(join(top, "memproxy"))}  memproxy\n`);
    expect(readFileSync(join(top, "config.example.yaml"), "utf8")).toBe(readFileSync(join(import.meta.dir, "..", "config.example.yaml"), "utf8"));
    expect(existsSync(join(top, "install.sh"))).toBe(true);
    const version = await exec([join(top, "memproxy"), "--version"]);
    expect(version).toEqual({ stdout: `${VERSION}\n`, stderr: "", code: 0 });
  });

  test("--strict fails when a target had to be skipped", async () => {
    const listener = hangUp();
    try {
      const r = await exec([process.execPath, "scripts/release.ts", "--targets", CROSS, "--strict", "--out", join(tmp, "strict")], { env: offlineEnv(listener) });
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`skipped ${CROSS}`);
    } finally {
      listener.stop(true);
    }
  });

  test("an unknown target is a usage error", async () => {
    const r = await exec([process.execPath, "scripts/release.ts", "--targets", "windows-x64", "--out", join(tmp, "none")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown target 'windows-x64'");
  });
});

describe("scripts/install.sh", () => {
  test("installs from the archive into --bin-dir after checking its checksum", async () => {
    await release();
    const bin = join(tmp, "bin-dir");
    const r = await exec(["sh", join(out, "install.sh"), "--bin-dir", bin, join(out, ARCHIVE)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`installed memproxy ${VERSION} to ${bin}/memproxy`);
    expect((await exec([join(bin, "memproxy"), "--version"])).stdout).toBe(`${VERSION}\n`);
  });

  test("refuses an archive that does not match its checksum, and installs nothing", async () => {
    await release();
    const dir = mkdtempSync(join(tmp, "damaged-"));
    copyFileSync(join(out, ARCHIVE), join(dir, ARCHIVE));
    writeFileSync(join(dir, `${ARCHIVE}.sha256`), `${"0".repeat(64)}  ${ARCHIVE}\n`);
    const r = await exec(["sh", join(out, "install.sh"), "--prefix", join(dir, "prefix"), join(dir, ARCHIVE)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`checksum mismatch for ${join(dir, ARCHIVE)}`);
    expect(existsSync(join(dir, "prefix"))).toBe(false);

    rmSync(join(dir, `${ARCHIVE}.sha256`));
    const missing = await exec(["sh", join(out, "install.sh"), join(dir, ARCHIVE)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no checksum file ${join(dir, ARCHIVE)}.sha256`);
  });

  test("run inside an extracted archive, installs into ~/.local/bin", async () => {
    await release();
    const dir = mkdtempSync(join(tmp, "inside-"));
    expect((await exec(["tar", "-xzf", join(out, ARCHIVE), "-C", dir])).code).toBe(0);
    const home = join(dir, "home");
    mkdirSync(home);
    const r = await exec(["sh", join(dir, `memproxy-${VERSION}-${HOST}`, "install.sh")], { env: { PATH: process.env.PATH, HOME: home } });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("is not on your PATH");
    expect((await exec([join(home, ".local", "bin", "memproxy"), "--version"])).stdout).toBe(`${VERSION}\n`);
  });
});
