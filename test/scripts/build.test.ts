// scripts/build.ts: what a build embeds for --version, and how the compiled binary lives with the process that started it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildCommand, buildInfo } from "../../scripts/build.ts";
import { VERSION } from "../../src/version.ts";
import { startBackend } from "../support/backend.ts";
import { compiledBinary } from "../support/memproxy.ts";
import { LineLog, runToEnd } from "../support/process.ts";

const ROOT = join(import.meta.dir, "..", "..");
const tmp = mkdtempSync(join(tmpdir(), "memproxy-build-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function git(dir: string, ...args: string[]) {
  const r = Bun.spawnSync(["git", "-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

describe("buildInfo", () => {
  test("the short commit, marked -dirty once a tracked file changes; the UTC day, or SOURCE_DATE_EPOCH's", () => {
    const repo = mkdtempSync(join(tmp, "repo-"));
    git(repo, "init", "-q");
    writeFileSync(join(repo, "a.txt"), "1\n");
    git(repo, "add", "a.txt");
    git(repo, "commit", "-q", "-m", "one");
    const head = git(repo, "rev-parse", "--short=7", "HEAD");
    expect(buildInfo(repo, { PATH: process.env.PATH, SOURCE_DATE_EPOCH: "1795000000" })).toEqual({ commit: head, date: "2026-11-18" });
    writeFileSync(join(repo, "untracked.txt"), "x\n");
    expect(buildInfo(repo).commit).toBe(head);
    writeFileSync(join(repo, "a.txt"), "2\n");
    expect(buildInfo(repo).commit).toBe(`${head}-dirty`);
    expect(buildInfo(repo).date).toBe(new Date().toISOString().slice(0, 10));
  });

  test("outside a git checkout the commit is unknown", () => {
    expect(buildInfo(mkdtempSync(join(tmp, "plain-"))).commit).toBe("unknown");
  });
});

describe("the compiled binary's version", () => {
  test("embeds the commit and date given to the build, and the Bun it runs on", async () => {
    const entry = join(tmp, "version-fixture.ts");
    writeFileSync(entry, `import { versionText } from ${JSON.stringify(join(ROOT, "src", "version.ts"))};\nconsole.log(versionText());\n`);
    const out = join(tmp, "version-fixture");
    const cmd = buildCommand({ outfile: out, minify: true, info: { commit: "abc1234-dirty", date: "2026-01-02" } });
    cmd[cmd.length - 1] = entry;
    expect(await runToEnd(cmd, { cwd: ROOT })).toMatchObject({ code: 0 });
    expect((await runToEnd([out])).stdout).toBe(`memproxy ${VERSION} (commit abc1234-dirty, built 2026-01-02, bun ${Bun.version})\n`);
  });
});

// A user who starts memproxy from a script (`nohup memproxy … &`, `setsid memproxy &`) expects it to keep
// running once the script has ended. Each shell below starts memproxy in the background, reports its pid,
// and exits when the test closes its stdin, after memproxy is listening.
describe.each([
  ["&", `"$0" "$@" &`],
  ["nohup … &", `nohup "$0" "$@" &`],
  ["setsid … &", `setsid "$0" "$@" &`],
])("started from a shell with %s", (_name, start) => {
  let bin: string;
  beforeAll(async () => {
    bin = await compiledBinary();
  });

  test("memproxy outlives the shell and keeps serving", async () => {
    await using backend = startBackend();
    const shell = Bun.spawn(["sh", "-c", `${start}\necho "memproxy pid=$!"\nread _ || true`, bin, "--port", "0", "--backend", backend.url], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    // memproxy writes into the shell's stdout and stderr, which it inherited: they end when memproxy exits.
    const { log, exited: ended } = LineLog.of(shell);
    const pid = Number(/pid=(\d+)/.exec(await log.waitFor("memproxy pid="))![1]);
    await using _cleanup = { [Symbol.asyncDispose]: async () => void (kill(pid, "SIGKILL"), await ended) };
    const url = /listening on (http:\/\/[^\s"]+)/.exec(await log.waitFor("listening on"))![1]!;

    shell.stdin.end();
    expect(await shell.exited).toBe(0);

    const live = await fetch(`${url}/health/liveliness`);
    expect(live.status).toBe(200);
    const res = await fetch(`${url}/v1/messages`, { method: "POST", body: "{}", headers: { "user-agent": "claude-cli/2.1.197 (external, cli)" } });
    expect(res.status).toBe(200);
    expect((await backend.waitFor(1))[0]!.headers.get("x-sm-user-id")).toBe("claude-cli");

    // Still the same process, stopped only by us, and cleanly.
    expect(kill(pid, "SIGTERM")).toBe(true);
    await ended;
    expect(log.all.join("\n")).toContain("received SIGTERM, shutting down");
    expect(log.all.at(-1)).toContain("stopped");
  });
});

function kill(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
