// Starting memproxy in tests: in process (library) or as a real child process (source or compiled binary).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../src/config.ts";
import { startServer, type ServerHandle, type ServerOptions } from "../../src/server.ts";
import { lines as linesOf } from "../../scripts/bench/procs.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** Starts memproxy in this process on 127.0.0.1, port 0, from YAML text (backend URL substituted by the caller). */
export function startProxy(yaml: string, env: Record<string, string | undefined> = process.env, options: ServerOptions = {}): ServerHandle & AsyncDisposable {
  const config = parseConfig(yaml, "test.yaml", env);
  const handle = startServer({ ...config, listen: { ...config.listen, host: "127.0.0.1", port: 0 } }, options);
  return Object.assign(handle, { [Symbol.asyncDispose]: async () => void (await handle.stop(0)) });
}

let built: Promise<string> | undefined;
/** Builds the compiled executable once per test run, into a temporary folder; returns its path. */
export function compiledBinary(): Promise<string> {
  built ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), "memproxy-bin-")), "memproxy");
    const proc = Bun.spawn([process.execPath, "scripts/build.ts", "--outfile", out], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
    if (code !== 0) throw new Error(`build failed (${code}):\n${stdout}\n${stderr}`);
    return out;
  })();
  return built;
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
    env: { ...process.env, ...options.env },
    stdout: "pipe",
    stderr: "pipe",
    stdin: "ignore",
  });
  const lines: string[] = [];
  const watchers: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  let ended = false;
  const endWaiters: (() => void)[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const line of linesOf(stream)) {
      lines.push(line);
      for (let i = watchers.length - 1; i >= 0; i--) {
        if (watchers[i]!.test(line)) watchers.splice(i, 1)[0]!.resolve(line);
      }
    }
  };
  const pumped = Promise.all([pump(proc.stdout), pump(proc.stderr)]).then(() => {
    ended = true;
    for (const w of endWaiters) w();
  });
  const exited = pumped.then(() => proc.exited);
  const waitForLine = (needle: string | RegExp, from = 0) => {
    const test = (l: string) => (typeof needle === "string" ? l.includes(needle) : needle.test(l));
    const found = lines.slice(from).find(test);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<string>((resolve, reject) => {
      watchers.push({ test, resolve });
      const fail = () => reject(new Error(`process ended without printing ${needle}; output:\n${lines.join("\n")}`));
      if (ended) fail();
      else endWaiters.push(fail);
    });
  };
  return {
    proc,
    lines,
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
