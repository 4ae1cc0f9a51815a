// Starting memproxy in tests: in process (library) or as a real child process (source or compiled binary).
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { startServer, type ServerHandle, type ServerOptions } from "../../src/server.ts";
import { LineLog, runToEnd, tempDir } from "./process.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** Starts memproxy in this process on 127.0.0.1, port 0, from YAML text (backend URL substituted by the caller). */
export function startProxy(yaml: string, env: Record<string, string | undefined> = process.env, options: ServerOptions = {}): ServerHandle & AsyncDisposable {
  const config = parseConfig(yaml, "test.yaml", env);
  const handle = startServer({ ...config, listen: { ...config.listen, host: "127.0.0.1", port: 0 } }, options);
  return Object.assign(handle, { [Symbol.asyncDispose]: async () => void (await handle.stop(0)) });
}

let built: Promise<string> | undefined;
let builtDir: Disposable | undefined;
/**
 * Builds the compiled executable once per test run, into a temporary folder that removeCompiledBinary()
 * removes when the run ends (test/support/preload.ts); returns its path.
 */
export function compiledBinary(): Promise<string> {
  built ??= (async () => {
    const dir = tempDir("bin");
    builtDir = dir;
    const out = dir.file("memproxy");
    const r = await runToEnd([process.execPath, "scripts/build.ts", "--outfile", out], { cwd: ROOT });
    if (r.code !== 0) throw new Error(`build failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
    return out;
  })();
  return built;
}

/** Removes the compiled executable's folder, if one was built. */
export function removeCompiledBinary(): void {
  builtDir?.[Symbol.dispose]();
}

/** A memproxy child process whose stdout/stderr are collected line by line. */
export interface MemproxyProcess extends AsyncDisposable {
  readonly proc: ReturnType<typeof Bun.spawn>;
  readonly lines: string[];
  /** Resolves with the first output line (stdout or stderr) that contains `needle`, from line `from` on (default 0). */
  waitForLine(needle: string | RegExp, from?: number): Promise<string>;
  /** Resolves with the URL from the "listening on" line. */
  listening(): Promise<string>;
  readonly exited: Promise<number>;
}

/** Spawns `cmd` (e.g. [binary, "--config", file]) and follows its output. */
export function spawnMemproxy(cmd: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): MemproxyProcess {
  const proc = Bun.spawn(cmd, {
    cwd: options.cwd ?? ROOT,
    // A memproxy started by a test dies with the test runner, however the runner ends.
    env: { BUN_FEATURE_FLAG_NO_ORPHANS: "1", ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const { log, exited } = LineLog.of(proc);
  const waitForLine = (needle: string | RegExp, from = 0) => log.waitFor(needle, { from });
  return {
    proc,
    lines: log.all,
    waitForLine,
    async listening() {
      const line = await waitForLine(/listening on http/);
      return /listening on (http:\/\/[^\s"]+)/.exec(line)![1]!;
    },
    exited,
    async [Symbol.asyncDispose]() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
