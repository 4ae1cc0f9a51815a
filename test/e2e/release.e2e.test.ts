// scripts/release.ts and scripts/install.sh end to end: a release of the host's target checked archive by archive,
// and a release of all four targets whose darwin signatures are verified (rcodesign) and whose linux-arm64
// binary is started under QEMU user emulation.
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCommand, buildInfo } from "../../scripts/build.ts";
import { findRcodesign, IDENTIFIER, RCODESIGN_VERSION, verifyDarwin } from "../../scripts/codesign.ts";
import { VERSION } from "../../src/version.ts";
import { startBackend } from "../support/backend.ts";
import { spawnMemproxy } from "../support/memproxy.ts";
import { runToEnd, type Finished } from "../support/process.ts";

const ROOT = join(import.meta.dir, "..", "..");
const HOST = `${process.platform}-${process.arch}`;
// A target this machine is not, so that Bun has to fetch its runtime.
const CROSS = HOST === "darwin-arm64" ? "linux-arm64" : "darwin-arm64";
const ARCHIVE = `memproxy-${VERSION}-${HOST}.tar.gz`;
const TARGETS = ["linux-x64", "linux-arm64", "darwin-x64", "darwin-arm64"];
// A release takes from tens of seconds (one target) to minutes (four, on a busy machine).
const SLOW = 600_000;

const tmp = mkdtempSync(join(tmpdir(), "memproxy-release-"));
const out = join(tmp, "release");
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
/** What `--version` prints (src/version.ts versionText()), whatever commit and day the build had. */
const VERSION_LINE = new RegExp(`^memproxy ${escape(VERSION)} \\(commit ([0-9a-f]{7}(-dirty)?|unknown), built \\d{4}-\\d{2}-\\d{2}, bun ${escape(Bun.version)}\\)$`);
/** The version line release.ts saw the target's binary print (it checks it against the build's own commit and day). */
function startedLine(releaseOutput: string, target: string): string {
  const line = new RegExp(`^started ${target}(?: \\(under [^)]*\\))?: (.*)$`, "m").exec(releaseOutput)?.[1];
  if (!line) throw new Error(`release.ts did not start ${target}:\n${releaseOutput}`);
  expect(line).toMatch(VERSION_LINE);
  return line;
}

/** Runs `cmd` to its end, by default in the repository. */
function exec(cmd: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<Finished> {
  return runToEnd(cmd, { ...options, cwd: options.cwd ?? ROOT });
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
  test(
    "builds the host's archive and skips, with the reason, a target whose runtime cannot be fetched",
    async () => {
      const r = await release();
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`skipped ${CROSS}: bun could not fetch its runtime`);
      expect(r.stdout).toContain("Failed to download");
      expect(existsSync(join(out, ARCHIVE))).toBe(true);
      expect(existsSync(join(out, `memproxy-${VERSION}-${CROSS}.tar.gz`))).toBe(false);
    },
    SLOW,
  );

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
    expect(readFileSync(join(top, "config.example.yaml"), "utf8")).toBe(readFileSync(join(ROOT, "config.example.yaml"), "utf8"));
    expect(existsSync(join(top, "install.sh"))).toBe(true);
    const version = await exec([join(top, "memproxy"), "--version"]);
    expect(version).toEqual({ stdout: `${startedLine((await release()).stdout, HOST)}\n`, stderr: "", code: 0 });
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

  test("notarising without a Developer ID is a usage error, before anything is built", async () => {
    const r = await exec([process.execPath, "scripts/release.ts", "--targets", "host", "--out", join(tmp, "notary")], {
      env: { ...process.env, MEMPROXY_NOTARY_API_KEY_FILE: "/nonexistent/key.json", MEMPROXY_SIGN_P12_FILE: "" },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("MEMPROXY_SIGN_P12_FILE is not");
    expect(existsSync(join(tmp, "notary", ARCHIVE))).toBe(false);
  });
});

describe("scripts/install.sh", () => {
  test("installs from the archive into --bin-dir after checking its checksum", async () => {
    await release();
    const bin = join(tmp, "bin-dir");
    const r = await exec(["sh", join(out, "install.sh"), "--bin-dir", bin, join(out, ARCHIVE)]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const line = startedLine((await release()).stdout, HOST);
    expect(r.stdout).toContain(`installed ${line} to ${bin}/memproxy\n`);
    expect((await exec([join(bin, "memproxy"), "--version"])).stdout).toBe(`${line}\n`);
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
    expect((await exec([join(home, ".local", "bin", "memproxy"), "--version"])).stdout).toBe(`${startedLine((await release()).stdout, HOST)}\n`);
  });
});

// ---- All four targets: signatures and emulation ---------------------------------------------------------------

const RCODESIGN = findRcodesign();
const QEMU = Bun.which("qemu-aarch64-static");
const ARM64_LIBC = "/usr/aarch64-linux-gnu";
const CI = process.env.CI === "true";
const SETUP = "bash scripts/setup-release-tools.sh";
if (!RCODESIGN && !CI) {
  console.warn(`release.e2e.test.ts: skipping the four-target release and its darwin signatures: rcodesign ${RCODESIGN_VERSION} is not installed. Install it with: ${SETUP}`);
}
if ((!QEMU || !existsSync(ARM64_LIBC)) && !CI) {
  console.warn(`release.e2e.test.ts: skipping the linux-arm64 binary under emulation: qemu-aarch64-static or ${ARM64_LIBC} is missing. Install them with: ${SETUP} (as root), or apt-get install qemu-user-static libc6-arm64-cross`);
}
test.if(CI && !RCODESIGN)("rcodesign is installed (required in CI)", () => {
  throw new Error(`rcodesign ${RCODESIGN_VERSION} is not installed: run ${SETUP} (or set MEMPROXY_RCODESIGN_BIN)`);
});
test.if(CI && (!QEMU || !existsSync(ARM64_LIBC)))("QEMU user emulation for arm64 is installed (required in CI)", () => {
  throw new Error(`qemu-aarch64-static or ${ARM64_LIBC} is missing: run ${SETUP} as root (apt-get install qemu-user-static libc6-arm64-cross)`);
});

const full = join(tmp, "full");
// Without rcodesign the darwin targets cannot be released (they would be skipped): then only the linux ones, for QEMU.
const FULL_TARGETS = RCODESIGN ? "all" : "linux-x64,linux-arm64";
let releasingAll: Promise<{ stdout: string; stderr: string; code: number }> | undefined;
/** A release of every target (Bun fetches the cross runtimes from the npm registry), once for the tests below. */
function releaseAll() {
  releasingAll ??= exec([process.execPath, "scripts/release.ts", "--targets", FULL_TARGETS, "--strict", "--out", full]);
  return releasingAll;
}
/** Extracts one target's binary from the full release; returns its path. */
async function binaryOf(target: string): Promise<string> {
  const r = await releaseAll();
  if (r.code !== 0) throw new Error(`the release failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  const dir = mkdtempSync(join(tmp, `${target}-`));
  expect((await exec(["tar", "-xzf", join(full, `memproxy-${VERSION}-${target}.tar.gz`), "-C", dir])).code).toBe(0);
  return join(dir, `memproxy-${VERSION}-${target}`, "memproxy");
}

describe.skipIf(!RCODESIGN || process.platform !== "linux")("a release of all four targets, darwin signatures", () => {
  test(
    "every target is built, the darwin ones signed and verified, and started where this machine can",
    async () => {
      const r = await releaseAll();
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      for (const target of TARGETS) expect(r.stdout).toContain(`built ${join(full, `memproxy-${VERSION}-${target}.tar.gz`)}`);
      expect(r.stdout).toContain("signed darwin-x64 (ad hoc); rcodesign verify: OK");
      expect(r.stdout).toContain("signed darwin-arm64 (ad hoc); rcodesign verify: OK");
      // One build: every target reports the same commit and day.
      expect(startedLine(r.stdout, "linux-arm64")).toBe(startedLine(r.stdout, HOST));
      expect(readFileSync(join(full, "SHA256SUMS"), "utf8").trimEnd().split("\n")).toHaveLength(4);
    },
    SLOW,
  );

  // Bun's own output for darwin-x64 is the case the signing exists for: the check must see its problems.
  test(
    "the check finds the digest problems of Bun's unsigned darwin-x64 output",
    async () => {
      const raw = join(tmp, "raw-darwin-x64");
      const build = await exec(buildCommand({ target: "bun-darwin-x64", outfile: raw, minify: true, info: buildInfo(ROOT) }));
      expect(build).toMatchObject({ code: 0 });
      const verified = await verifyDarwin(raw, RCODESIGN!);
      expect(verified.ok).toBe(false);
      expect(verified.problems.filter((p) => /^code digest (mismatch|missing)/.test(p)).length).toBeGreaterThan(100);
      expect(verified.problems).toContainEqual(expect.stringMatching(/^the code digests cover \d+ bytes, but the signature starts at \d+/));
    },
    SLOW,
  );

  test.each(["darwin-x64", "darwin-arm64"])(
    "%s: the signature verifies, with no digest problem, under memproxy's identifier",
    async (target) => {
      const verified = await verifyDarwin(await binaryOf(target), RCODESIGN!);
      expect(verified.problems).toEqual([]);
      expect(verified.ok).toBe(true);
      expect(verified.info).toMatchObject({ identifier: IDENTIFIER, flags: ["ADHOC", "RUNTIME"] });
      // Signed over the final bytes: every page up to the signature has its digest.
      expect(verified.info!.signedSize).toBe(verified.info!.signatureStart);
    },
    SLOW,
  );
});

describe.skipIf(!QEMU || !existsSync(ARM64_LIBC) || HOST !== "linux-x64")("linux-arm64 under QEMU user emulation", () => {
  const emulated = (binary: string) => [QEMU!, "-L", ARM64_LIBC, binary];

  test(
    "answers --version",
    async () => {
      const r = await exec([...emulated(await binaryOf("linux-arm64")), "--version"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${startedLine((await releaseAll()).stdout, "linux-arm64")}\n`);
      // Without binfmt_misc the re-exec fails (ENOEXEC): then one warning line, and nothing else.
      const lines = r.stderr.split("\n").filter(Boolean);
      expect(lines.length).toBeLessThanOrEqual(1);
      for (const line of lines) expect(line).toStartWith("memproxy: warning: cannot re-execute itself with its runtime settings (ENOEXEC)");
    },
    SLOW,
  );

  test(
    "routes a request to the backend with the caller's x-sm-user-id",
    async () => {
      const binary = await binaryOf("linux-arm64");
      await using backend = startBackend();
      await using mp = spawnMemproxy([...emulated(binary), "--port", "0", "--backend", backend.url]);
      const url = await mp.listening();
      const res = await fetch(`${url}/v1/chat/completions`, {
        method: "POST",
        body: JSON.stringify({ model: "m", messages: [] }),
        headers: { "user-agent": "claude-cli/2.1.197 (external, cli)", "x-sm-user-id": "someone-else", "content-type": "application/json" },
      });
      expect(res.status).toBe(200);
      const [arrived] = await backend.waitFor(1);
      expect(arrived!.path).toBe("/v1/chat/completions");
      expect(arrived!.headers.get("x-sm-user-id")).toBe("claude-cli");
      expect(mp.lines.join("\n")).not.toContain("ExperimentalWarning");
      expect(mp.lines.filter((l) => l.includes("warning: cannot re-execute")).length).toBeLessThanOrEqual(1);
    },
    SLOW,
  );
});
