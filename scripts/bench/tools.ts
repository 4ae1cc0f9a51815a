// The programs the benchmark compares against and drives: nginx and wrk, found or installed from
// Debian's packages; oha, pinned, built from crates.io into memproxy's tool cache; and the facts about
// the machine that a result is meaningless without.
import { cpus, homedir, totalmem } from "node:os";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const SBIN_PATH = `${process.env.PATH ?? ""}:/usr/local/sbin:/usr/sbin:/sbin`;

/** The path of an executable on PATH (or in an sbin directory), if any. */
export function findTool(name: string): string | undefined {
  return Bun.which(name, { PATH: SBIN_PATH }) ?? undefined;
}

async function run(cmd: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  const [out, err, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { code, out: out + err };
}

/** nginx, wrk and oha if they could be had, and what was done or is missing, for the report. */
export interface Tools {
  nginx?: string;
  wrk?: string;
  oha?: string;
  notes: string[];
}

/** The oha release the open-loop scenarios use (crates.io). */
export const OHA_VERSION = "1.16.0";

/** memproxy's cache of test tools: `$MEMPROXY_CACHE_DIR`, else ~/.cache/memproxy. */
export function cacheDir(): string {
  return process.env.MEMPROXY_CACHE_DIR || join(homedir(), ".cache", "memproxy");
}

/** Where the pinned oha lives once installed: <cache>/oha-<version>/bin/oha. */
export function ohaPath(): string {
  return join(cacheDir(), `oha-${OHA_VERSION}`, "bin", "oha");
}

/** True when `bin` runs and says it is oha of the pinned version. */
async function isPinnedOha(bin: string): Promise<boolean> {
  if (!existsSync(bin)) return false;
  const res = await run([bin, "--version"]).catch(() => ({ code: 1, out: "" }));
  return res.code === 0 && res.out.trim() === `oha ${OHA_VERSION}`;
}

/**
 * Finds the pinned oha in the cache; when it is missing and `install` is set, builds it with
 * `cargo install --locked` (221 crates: minutes, once), under a lock so that concurrent benches build it
 * once. Never fails: what is missing goes to `notes`.
 * @returns its path, if it could be had.
 */
export async function ensureOha(install: boolean, log: (line: string) => void, notes: string[]): Promise<string | undefined> {
  const bin = ohaPath();
  if (await isPinnedOha(bin)) return bin;
  if (!install) {
    notes.push(`oha ${OHA_VERSION} not found at ${bin} (--no-install given)`);
    return undefined;
  }
  const cargo = findTool("cargo") ?? [join(homedir(), ".cargo", "bin", "cargo")].find(existsSync);
  if (!cargo) {
    notes.push(`oha ${OHA_VERSION} is built with cargo, and there is no cargo here: install Rust (e.g. apt-get install cargo), or oha ${OHA_VERSION} into ${join(cacheDir(), `oha-${OHA_VERSION}`)}`);
    return undefined;
  }
  const root = join(cacheDir(), `oha-${OHA_VERSION}`);
  mkdirSync(root, { recursive: true });
  // Its default features (rustls) are needed: 1.16.0 does not compile without a TLS feature.
  const cargoInstall = [cargo, "install", "--locked", "--version", OHA_VERSION, "--root", root, "oha"];
  const flock = findTool("flock");
  log(`building oha ${OHA_VERSION} from crates.io into ${root} (cargo install: about 9 minutes of CPU, once)...`);
  const t0 = performance.now();
  // Under the lock, a build another bench finished meanwhile is found and kept (cargo install skips it).
  const res = await run(flock ? [flock, "-w", "1800", join(root, ".lock"), ...cargoInstall] : cargoInstall);
  const s = Math.round((performance.now() - t0) / 1000);
  if (res.code !== 0 || !(await isPinnedOha(bin))) {
    notes.push(`cargo install oha ${OHA_VERSION} failed: ${res.out.trim().split("\n").slice(-3).join(" | ")}`);
    return undefined;
  }
  notes.push(`installed oha ${OHA_VERSION} (${bin}) with cargo install in ${s} s`);
  return bin;
}

/**
 * Finds nginx and wrk; when one is missing and `install` is set, installs it with apt-get (as
 * root only). Never fails: what is missing is reported in `notes` and its measurements skipped.
 */
export async function ensureTools(install: boolean, log: (line: string) => void): Promise<Tools> {
  const notes: string[] = [];
  let nginx = findTool("nginx");
  let wrk = findTool("wrk");
  const missing = [!nginx && "nginx", !wrk && "wrk"].filter(Boolean) as string[];
  if (missing.length && install) {
    const apt = findTool("apt-get");
    if (!apt) notes.push(`${missing.join(" and ")} not found and there is no apt-get here: install them yourself`);
    else if (process.getuid?.() !== 0) notes.push(`${missing.join(" and ")} not found; install them with: sudo apt-get install -y nginx-light wrk`);
    else {
      log(`installing ${missing.join(" and ")} from Debian's packages (apt-get)...`);
      await run([apt, "update"]);
      // nginx-light is the small build (Debian 12 and older); newer releases only have nginx.
      const wanted = missing.map((m) => (m === "nginx" ? "nginx-light" : m));
      let res = await run([apt, "install", "-y", "--no-install-recommends", ...wanted]);
      if (res.code !== 0 && missing.includes("nginx")) {
        res = await run([apt, "install", "-y", "--no-install-recommends", ...missing]);
      }
      if (res.code !== 0) notes.push(`apt-get install ${missing.join(" ")} failed: ${res.out.trim().split("\n").at(-1)}`);
      nginx = findTool("nginx");
      wrk = findTool("wrk");
      if (nginx && missing.includes("nginx")) notes.push(`installed nginx (${nginx}) with apt-get`);
      if (wrk && missing.includes("wrk")) notes.push(`installed wrk (${wrk}) with apt-get`);
    }
  } else if (missing.length) notes.push(`${missing.join(" and ")} not found (--no-install given)`);
  if (!nginx) notes.push("no nginx: the nginx column stays empty and the targets relative to nginx are not judged");
  if (!wrk) notes.push("no wrk: the small JSON throughput scenarios are skipped");
  const oha = await ensureOha(install, log, notes);
  if (!oha) notes.push("no oha: the open-loop latency scenarios are skipped");
  return { nginx, wrk, oha, notes };
}

/**
 * Version strings of the programs in the comparison.
 * @param binary a memproxy binary given with --binary: its commit is the one it reports, not the work tree's.
 */
export async function versions(tools: Tools, binary?: string): Promise<Record<string, string>> {
  const out: Record<string, string> = { bun: Bun.version };
  if (tools.nginx) out.nginx = (await run([tools.nginx, "-v"])).out.trim().replace(/^nginx version: nginx\//, "");
  // "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
  if (tools.wrk) out.wrk = (await run([tools.wrk, "-v"])).out.split("\n")[0]!.replace(/^wrk\s+/, "").replace(/\s+Copyright.*$/, "").trim();
  if (tools.oha) out.oha = (await run([tools.oha, "--version"])).out.trim().replace(/^oha\s+/, "");
  if (binary) {
    // "memproxy 0.1.0 (commit 832c775, built 2026-11-29, bun 1.4.5)"
    const reported = (await run([binary, "--version"]).catch(() => ({ code: 1, out: "" }))).out.match(/\(commit ([^,)]+)/)?.[1];
    out.memproxy_commit = reported ?? `unknown (${binary})`;
    return out;
  }
  const repo = new URL("../..", import.meta.url).pathname;
  const git = await run(["git", "-C", repo, "rev-parse", "--short", "HEAD"]).catch(() => ({ code: 1, out: "" }));
  if (git.code === 0) {
    // The build is of the work tree: uncommitted changes to what goes into the binary make it "-dirty".
    const clean = await run(["git", "-C", repo, "diff", "--quiet", "HEAD", "--", "src", "package.json", "bun.lock", "scripts/build.ts"]).catch(() => ({ code: 0, out: "" }));
    out.memproxy_commit = git.out.trim() + (clean.code === 1 ? "-dirty" : "");
  }
  return out;
}

/** What the machine is: a result is only comparable with one from the same machine. */
export function machine(): Record<string, string | number> {
  const cpuinfo = (() => {
    try {
      return readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      return "";
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? "unknown";
  const kernel = (() => {
    try {
      return readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
    } catch {
      return process.platform;
    }
  })();
  return {
    nproc: navigator.hardwareConcurrency,
    cpu: model,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel,
    arch: process.arch,
  };
}
