// The supervisor against a stand-in LiteLLM child (the real one is in litellm.e2e.test.ts).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createLogger } from "../src/log.ts";
import { litellmLine, portFree, Supervisor, SupervisorError, withParentDeathSignal, type SupervisorOptions } from "../src/supervisor.ts";
import { readJson } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy } from "./support/memproxy.ts";
import { alive, freePort, LineLog, runToEnd, survivors, tempDir } from "./support/process.ts";

const FIXTURE = join(import.meta.dir, "support", "fake-litellm-fixture.ts");
const tmp = tempDir("sup");
const dir = tmp.path;
afterAll(() => tmp[Symbol.dispose]());

/** A supervisor of the fixture, with its log lines collected. */
function supervise(env: Record<string, string> = {}, overrides: Partial<SupervisorOptions> = {}) {
  const port = freePort();
  const log = new LineLog();
  const lines = log.all;
  const logger = createLogger({ level: "debug", format: "json", write: (l) => log.push(l) });
  const sup = new Supervisor({
    command: [process.execPath, FIXTURE, "--config", "x.yaml", "--host", "127.0.0.1", "--port", String(port)],
    env,
    url: `http://127.0.0.1:${port}`,
    readyTimeoutMs: 30_000,
    stopTimeoutMs: 5_000,
    restart: { initialBackoffMs: 10, maxBackoffMs: 100, maxRestarts: 3, windowMs: 60_000 },
    logger,
    ...overrides,
  });
  return { sup, port, lines, log, [Symbol.asyncDispose]: async () => void (await sup.stop()) };
}

describe("Supervisor", () => {
  test("starts the child, waits for readiness, passes its output through marked as LiteLLM's, stops it", async () => {
    await using s = supervise();
    await s.sup.start();
    const status = s.sup.status();
    expect(status.state).toBe("ready");
    expect(alive(status.pid!)).toBe(true);
    const res = await fetch(`http://127.0.0.1:${s.port}/v1/models`);
    expect((await readJson(res)).fake).toBe("litellm");
    const startLine = s.lines.map((l) => JSON.parse(l)).find((l) => String(l.msg).startsWith("fake litellm starting"));
    expect(startLine).toMatchObject({ source: "litellm", stream: "stdout", level: "info" });
    const pid = status.pid!;
    expect(await s.sup.stop()).toEqual({ clean: true });
    expect(alive(pid)).toBe(false);
    expect(s.sup.status().state).toBe("stopped");
  });

  test("a child that never becomes ready: a clear error with its last lines", async () => {
    await using s = supervise({ FAKE_MODE: "never-ready" }, { readyTimeoutMs: 500 });
    const err = await s.sup.start().catch((e) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err.message).toContain("did not become ready within");
    expect(err.message).toContain("/health/readiness");
    expect(err.message).toContain("Last lines from LiteLLM:");
    expect(err.message).toContain("fake litellm listening");
  });

  test("a child that exits during start-up: its exit code and last lines", async () => {
    await using s = supervise({ FAKE_MODE: "exit-at-start" });
    const err = await s.sup.start().catch((e) => e);
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err.message).toContain("exited during start-up (exit code 3)");
    expect(err.message).toContain("ERROR: something is wrong with the config");
  });

  test("a missing executable is a clear error at once, thrown by start() itself (before anything else starts)", async () => {
    await using s = supervise({}, { command: ["/nonexistent/bin/litellm", "--port", "1"] });
    let err: any;
    try {
      void s.sup.start();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SupervisorError);
    expect(err.message).toContain("'/nonexistent/bin/litellm' was not found");
    expect(err.message).toContain("--litellm-command");
  });

  test("output is read as it comes: a chatty child does not block on a full pipe", async () => {
    await using s = supervise({ FAKE_FLOOD_BYTES: String(4 * 1024 * 1024) });
    await s.sup.start();
    expect(s.sup.status().state).toBe("ready");
    // The lines it wrote before serving are read and passed on (4095 of its 4096 whole: its console.log of
    // "listening" can land inside one of its buffered stdout writes).
    await s.log.waitFor("x".repeat(1023), { count: 4095 });
  });

  test("an unexpected exit is restarted with backoff and becomes ready again", async () => {
    const restarts: (number | null)[] = [];
    await using s = supervise({}, { onRestart: (code) => void restarts.push(code) });
    await s.sup.start();
    const first = s.sup.status().pid!;
    const readyAgain = s.log.waitFor("LiteLLM is ready", { count: 2 });
    process.kill(first, "SIGKILL");
    await readyAgain;
    const status = s.sup.status();
    expect(status.state).toBe("ready");
    expect(status.restarts).toBe(1);
    expect(status.pid).not.toBe(first);
    expect(restarts).toHaveLength(1);
    expect(s.lines.some((l) => l.includes("exited unexpectedly (killed by SIGKILL); restarting in 10 ms"))).toBe(true);
  });

  test("a crash loop is given up on with a clear error instead of looping forever", async () => {
    const ready = join(dir, "ready-once");
    writeFileSync(ready, "");
    await using s = supervise({}, { restart: { initialBackoffMs: 5, maxBackoffMs: 20, maxRestarts: 2, windowMs: 60_000 } });
    const failed = new Promise<SupervisorError>((r) => s.sup.onFailed(r));
    await s.sup.start();
    // Each restart is killed as soon as it is ready; the third exit within the window is one too many.
    for (let n = 1; n <= 2; n++) {
      const again = s.log.waitFor("LiteLLM is ready", { count: n + 1 });
      process.kill(s.sup.status().pid!, "SIGKILL");
      await again;
    }
    process.kill(s.sup.status().pid!, "SIGKILL");
    const err = await failed;
    expect(err.message).toContain("exited 3 times within 60s");
    expect(err.message).toContain("giving up");
    expect(s.sup.status().state).toBe("failed");
  });

  test("stop: SIGTERM to the process group, SIGKILL after the timeout; grandchildren go too", async () => {
    await using s = supervise({ FAKE_MODE: "ignore-sigterm", FAKE_GRANDCHILD: "1" }, { stopTimeoutMs: 300 });
    await s.sup.start();
    const line = await s.log.waitFor("grandchild pid=");
    const grandchild = Number(/grandchild pid=(\d+)/.exec(line)![1]);
    const child = s.sup.status().pid!;
    expect(alive(grandchild)).toBe(true);
    expect(await s.sup.stop()).toEqual({ clean: false });
    expect(alive(child)).toBe(false);
    // Killed with its group: it ends (init reaps it later).
    expect(await survivors([grandchild])).toEqual([]);
    expect(s.lines.some((l) => l.includes("did not stop within 300 ms; killing it"))).toBe(true);
  });

  test.skipIf(process.platform !== "linux" || !Bun.which("setpriv"))("on Linux the child is told to stop when memproxy dies; a command not found is left as it is", () => {
    const wrapped = withParentDeathSignal([process.execPath, FIXTURE], process.env.PATH);
    expect(wrapped).toEqual([Bun.which("setpriv")!, "--pdeathsig", "TERM", "--", process.execPath, FIXTURE]);
    // Unwrapped, Bun.spawn itself reports the missing executable (ENOENT), which start-up turns into advice.
    expect(withParentDeathSignal(["/nonexistent/litellm"], process.env.PATH)).toEqual(["/nonexistent/litellm"]);
  });

  test("portFree tells a used port from a free one", () => {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    expect(portFree("127.0.0.1", l.port)).toBe(false);
    l.stop(true);
    expect(portFree("127.0.0.1", freePort())).toBe(true);
  });
});

describe("memproxy --spawn-litellm (compiled, stand-in LiteLLM)", () => {
  let bin: string;
  beforeAll(async () => {
    bin = await compiledBinary();
  });
  const config = (extra = "") => {
    const path = join(dir, `spawn-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(path, `memproxy:\n  listen: {port: 0}\n  litellm:\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]\n${extra}`);
    return path;
  };

  test("503 with Retry-After and /health 'starting' until LiteLLM is ready; then traffic reaches it; SIGTERM stops both", async () => {
    const readyFile = join(dir, `ready-${Date.now()}`);
    const port = freePort();
    const cfg = config(`    port: ${port}\n    env: {FAKE_READY_FILE: ${JSON.stringify(readyFile)}}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg, "--spawn-litellm"]);
    const url = await mp.listening();
    const early = await fetch(url + "/v1/chat/completions", { method: "POST", body: "{}" });
    expect(early.status).toBe(503);
    expect(early.headers.get("retry-after")).toBe("5");
    expect((await readJson(early)).error.code).toBe("backend_starting");
    const starting = await readJson(await fetch(url + "/health"));
    expect(starting.status).toBe("starting");
    expect(starting.litellm.state).toBe("starting");
    expect((await fetch(url + "/health/readiness")).status).toBe(503);

    writeFileSync(readyFile, "");
    await mp.waitForLine("LiteLLM is ready");
    const res = await readJson(await fetch(url + "/v1/models", { headers: { "x-memory-user-id": "proj-9" } }));
    expect(res).toMatchObject({ fake: "litellm", path: "/v1/models", user: "proj-9" });
    const health = await readJson(await fetch(url + "/health"));
    expect(health).toMatchObject({ status: "healthy", backend_url: `http://127.0.0.1:${port}`, litellm: { state: "ready", restarts: 0 } });
    const childPid = health.litellm.pid as number;
    expect(mp.lines.some((l) => l.includes(`--config ${cfg} --host 127.0.0.1 --port ${port}`))).toBe(true);

    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
    expect(alive(childPid)).toBe(false);
  });

  test("LiteLLM does not get memproxy's own Bun runtime settings", async () => {
    await using mp = spawnMemproxy([bin, "--config", config(`    port: ${freePort()}\n`), "--spawn-litellm"], {
      env: { BUN_CONFIG_MAX_HTTP_REQUESTS: "4096", BUN_JSC_numberOfGCMarkers: undefined, BUN_OPTIONS: undefined },
    });
    await mp.listening();
    expect(await mp.waitForLine("runtime env:")).toContain("runtime env: none");
    await mp.waitForLine("LiteLLM is ready");
  });

  // uvicorn's workers would outlive a LiteLLM killed outright, keep its port, and fail every later start
  // with "port in use": LiteLLM must be asked to stop (SIGTERM) even when memproxy dies by SIGKILL.
  test.skipIf(process.platform !== "linux" || !Bun.which("setpriv"))("memproxy killed with SIGKILL: LiteLLM is told to stop, and stops its workers", async () => {
    const cfg = config(`    port: ${freePort()}\n    env: {FAKE_WORKER: "1"}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg, "--spawn-litellm"]);
    await mp.listening();
    const worker = Number(/worker pid=(\d+)/.exec(await mp.waitForLine("worker pid="))![1]);
    await mp.waitForLine("LiteLLM is ready");
    expect(alive(worker)).toBe(true);
    mp.proc.kill("SIGKILL");
    await mp.exited;
    // The kernel sends LiteLLM SIGTERM at once; it stops the worker (which init then reaps).
    expect(await survivors([worker])).toEqual([]);
  });

  test("exit 1 when LiteLLM had to be killed at shutdown (not a clean stop)", async () => {
    const cfg = config(`    port: ${freePort()}\n    stop_timeout: 300ms\n    env: {FAKE_MODE: ignore-sigterm}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg, "--spawn-litellm"]);
    await mp.listening();
    await mp.waitForLine("LiteLLM is ready");
    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(1);
    expect(mp.lines.join("\n")).toContain("LiteLLM had to be killed");
  });

  test("a LiteLLM port already in use is a clear error at start", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const { stderr, code } = await runToEnd([bin, "--config", config(), "--spawn-litellm", "--litellm-port", String(busy.port)]);
      expect(code).toBe(1);
      expect(stderr).toContain(`cannot start LiteLLM on 127.0.0.1:${busy.port}: the port is already in use`);
    } finally {
      busy.stop(true);
    }
  });

  test("a missing litellm executable is a clear error at start", async () => {
    const { stdout, stderr, code } = await runToEnd([bin, "--config", config(), "--spawn-litellm", "--litellm-command", "/nonexistent/litellm", "--litellm-port", String(freePort())]);
    expect(code).toBe(1);
    // One line saying what to do: no stack, no bundle source, and nothing started.
    expect(stderr).toBe(
      "memproxy: cannot start LiteLLM: '/nonexistent/litellm' was not found. Install LiteLLM (pip install 'litellm[proxy]') or point --litellm-command / memproxy.litellm.command at its executable.\n",
    );
    expect(stdout).not.toContain("listening");
  });

  test("a litellm command that is not executable, or a config with no LiteLLM to start, is one clear line too", async () => {
    const plain = tmp.file("not-executable");
    writeFileSync(plain, "#!/bin/sh\n", { mode: 0o644 });
    const notExec = await runToEnd([bin, "--config", config(), "--spawn-litellm", "--litellm-command", plain, "--litellm-port", String(freePort())]);
    expect(notExec.code).toBe(1);
    expect(notExec.stderr).toBe(`memproxy: cannot start LiteLLM: '${plain}' is not executable (permission denied).\n`);
    expect(notExec.stdout).not.toContain("listening");
  });

  test("LiteLLM never ready within ready_timeout: memproxy reports it with LiteLLM's last lines and exits non-zero", async () => {
    const cfg = config(`    port: ${freePort()}\n    ready_timeout: 1s\n    env: {FAKE_MODE: never-ready}\n`);
    const { stderr, code } = await runToEnd([bin, "--config", cfg, "--spawn-litellm"]);
    expect(code).toBe(1);
    expect(stderr).toContain("LiteLLM did not become ready within 1s");
    expect(stderr).toContain("fake litellm listening");
  });

  test("--spawn-litellm with the embedded config asks for a config file", async () => {
    const { stderr, code } = await runToEnd([bin, "--spawn-litellm", "--port", "0"]);
    expect(code).toBe(1);
    expect(stderr).toContain("needs a config file with its model_list: pass --config FILE");
  });
});

describe("LiteLLM's output, as memproxy logs it", () => {
  // Lines LiteLLM 1.108.7 really wrote at start and per request (captured with its escape codes).
  test("escape codes removed, levels mapped, its logger's time and location moved out of the message", () => {
    expect(litellmLine("\x1b[32mLiteLLM: Proxy initialized with Config, Set models:\x1b[0m")).toEqual({ level: "info", msg: "LiteLLM: Proxy initialized with Config, Set models:", kind: "message" });
    expect(
      litellmLine("19:11:49 - LiteLLM Proxy:WARNING: login_throttle.py:126 - trusted_proxy_ranges is not set or not a valid list of ranges"),
    ).toEqual({ level: "warn", msg: "trusted_proxy_ranges is not set or not a valid list of ranges", kind: "message", where: "login_throttle.py:126" });
    expect(litellmLine("19:11:50 - LiteLLM Proxy:ERROR: common_request_processing.py:1839 - Exception occured")).toMatchObject({ level: "error", msg: "Exception occured" });
    expect(litellmLine("INFO:     Started server process [22751]")).toEqual({ level: "info", msg: "Started server process [22751]", kind: "message" });
    expect(litellmLine("WARNING:  Invalid HTTP request received.")).toMatchObject({ level: "warn", msg: "Invalid HTTP request received." });
    expect(litellmLine("Traceback (most recent call last):")).toMatchObject({ level: "error" });
    expect(litellmLine("   ")).toBeUndefined();
  });

  test("uvicorn's line per request and the start-up banner are told apart", () => {
    expect(litellmLine('INFO:     127.0.0.1:35192 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request')).toMatchObject({ kind: "access", level: "info" });
    for (const banner of [
      "   \u2588\u2588\u2557     \u2588\u2588\u2557\u2588\u2588\u2588\u2588\u2557",
      "\x1b[1;37m#------------------------------------------------------------#\x1b[0m",
      "\x1b[1;37m#         'The worst thing about this product is...'          #\x1b[0m",
      " Thank you for using LiteLLM! - Krrish & Ishaan",
      "\x1b[1;31mGive Feedback / Get Help: https://github.com/BerriAI/litellm/issues/new\x1b[0m",
    ]) {
      expect(litellmLine(banner)).toMatchObject({ kind: "banner", level: "debug" });
    }
  });

  test("the supervisor drops the access lines unless asked, and logs the rest at their level", async () => {
    const lines: Record<string, unknown>[] = [];
    const port = freePort();
    const logger = createLogger({ level: "debug", format: "json", write: (l) => void lines.push(JSON.parse(l)) });
    const script = tmp.file("chatty-fixture.ts");
    writeFileSync(
      script,
      `console.log('INFO:     127.0.0.1:1 - "GET /x HTTP/1.1" 200 OK');\nconsole.error("12:00:00 - LiteLLM Proxy:WARNING: a.py:1 - careful");\n` +
        `await import(${JSON.stringify(FIXTURE)});\n`,
    );
    for (const accessLog of [false, true]) {
      lines.length = 0;
      const sup = new Supervisor({
        command: [process.execPath, script, "--config", "x.yaml", "--host", "127.0.0.1", "--port", String(port)],
        env: {},
        url: `http://127.0.0.1:${port}`,
        readyTimeoutMs: 30_000,
        stopTimeoutMs: 5_000,
        restart: { initialBackoffMs: 10, maxBackoffMs: 100, maxRestarts: 0, windowMs: 60_000 },
        logger,
        accessLog,
      });
      await sup.start();
      await sup.stop();
      expect(lines.some((l) => String(l.msg).includes('"GET /x HTTP/1.1"'))).toBe(accessLog);
      expect(lines.find((l) => l.msg === "careful")).toMatchObject({ level: "warn", source: "litellm", stream: "stderr", where: "a.py:1" });
    }
  });
});
