// scripts/setup-release-tools.sh without building anything: reuse of a finished install, its last line, and the errors
// that say what to do. (A real build runs in CI: .ci/run.)
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RCODESIGN_VERSION } from "../../scripts/codesign.ts";
import { runToEnd, type Finished } from "../support/process.ts";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "setup-release-tools.sh");
const tmp = mkdtempSync(join(tmpdir(), "memproxy-setup-release-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The script with `env` added to a HOME of its own and no QEMU. */
function setup(env: Record<string, string>): Promise<Finished> {
  return runToEnd(["bash", SCRIPT], { env: { HOME: tmp, SKIP_QEMU: "1", ...env } });
}

/** A PATH with only the tools the script needs besides cargo (bash, coreutils, flock). */
function pathWithout(...missing: string[]): string {
  const dir = mkdtempSync(join(tmp, "path-"));
  for (const tool of ["bash", "cat", "mkdir", "rm", "mktemp", "date", "flock", "id", "dirname"]) {
    const where = Bun.which(tool);
    if (where && !missing.includes(tool)) symlinkSync(where, join(dir, tool));
  }
  return dir;
}

describe("setup-release-tools.sh", () => {
  test("an install of the pinned version is reused: its path is the last line of stdout, nothing is built", async () => {
    const cache = join(tmp, "cache");
    const base = join(cache, `rcodesign-${RCODESIGN_VERSION}`);
    mkdirSync(join(base, "bin"), { recursive: true });
    writeFileSync(join(base, "bin", "rcodesign"), `#!/bin/sh\necho "apple-codesign ${RCODESIGN_VERSION}"\n`);
    chmodSync(join(base, "bin", "rcodesign"), 0o755);
    writeFileSync(join(base, ".installed"), `apple-codesign ${RCODESIGN_VERSION} --no-default-features opt-level=0`);
    // No cargo on PATH: a rebuild would fail.
    const r = await setup({ MEMPROXY_CACHE_DIR: cache, PATH: pathWithout("cargo") });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${join(base, "bin", "rcodesign")}\n`);
    expect(r.stderr).toContain(`rcodesign ${RCODESIGN_VERSION} already installed`);
  });

  test("without cargo, a clear error naming what to install", async () => {
    const r = await setup({ MEMPROXY_CACHE_DIR: join(tmp, "fresh"), PATH: pathWithout("cargo") });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("ERROR: cargo is not installed");
  });

  test("QEMU missing where it cannot be installed: a clear error, and SKIP_QEMU=1 to go on without it", async () => {
    const r = await setup({ MEMPROXY_CACHE_DIR: join(tmp, "fresh"), PATH: pathWithout("cargo", "apt-get"), SKIP_QEMU: "" });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("QEMU user emulation is missing: install qemu-user-static libc6-arm64-cross");
    expect(r.stderr).toContain("SKIP_QEMU=1");
  });
});
