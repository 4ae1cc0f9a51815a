// The compiled executable, driven as a user would.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { manualStream, startBackend } from "./support/backend.ts";
import { compiledBinary, spawnMemproxy } from "./support/memproxy.ts";
import { STACK_LINE } from "./support/files.ts";
import { LineLog, runToEnd, tempDir } from "./support/process.ts";

let bin: string;
const tmp = tempDir("cli");
const dir = tmp.path;
afterAll(() => tmp[Symbol.dispose]());
const file = (name: string, text: string) => {
  const path = tmp.file(name);
  writeFileSync(path, text);
  return path;
};
/** Runs the binary to completion. */
const run = (args: string[], env: Record<string, string> = {}) => runToEnd([bin, ...args], { cwd: dir, env: { ...process.env, ...env } });

beforeAll(async () => {
  bin = await compiledBinary();
});

describe("memproxy (compiled)", () => {
  test("--version prints the package version; --help the usage", async () => {
    const version = await run(["--version"]);
    expect(version).toMatchObject({ stderr: "", code: 0 });
    expect(version.stdout).toMatch(new RegExp(`^memproxy ${pkg.version.replace(/\./g, "\\.")} \\(commit [0-9a-f]{7,}(-dirty)?, built \\d{4}-\\d\\d-\\d\\d, bun ${Bun.version.replace(/\./g, "\\.")}\\)\n$`));
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const word of ["--config", "--host", "--port", "--backend", "check", "explain"]) expect(help.stdout).toContain(word);
  });

  test("README's command line is --help's usage, line for line", async () => {
    const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
    const block = /## The command line\n\n```\n([\s\S]*?)```/.exec(readme)![1]!;
    const help = (await run(["--help"])).stdout;
    const usage = /Usage:\n([\s\S]*?)\n\n/.exec(help)![1]!;
    const lines = (text: string) => text.split("\n").map((l) => l.trim()).filter(Boolean);
    expect(lines(usage)).toEqual(lines(block));
  });

  test("an unknown option is a usage error", async () => {
    const r = await run(["--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--bogus");
  });

  test("check: a valid shared config is summarised", async () => {
    const path = file(
      "ok.yaml",
      `model_list:\n  - model_name: x\n    litellm_params: {model: openai/x, api_key: os.environ/UNSET_KEY_FOR_TEST}\n` +
        `user_id_mappings:\n  header_patterns:\n    - {header: user-agent, pattern: "OpenAIClientImpl/Java", user_id: pycharm-ai}\n` +
        `litellm_backend_url: http://127.0.0.1:4000\n`,
    );
    const r = await run(["check", "--config", path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${path}: OK`);
    expect(r.stdout).toContain("http://127.0.0.1:4000");
    expect(r.stdout).toContain('user-agent ~ "OpenAIClientImpl/Java" -> pycharm-ai');
    // Every layer of the routing, not only the user's patterns.
    expect(r.stdout).toContain("  built-in rules:   on: 23 rules for known tools, after yours");
    expect(r.stdout).toContain("  derived ids:      on: an unrecognised User-Agent's product name becomes its id");
  });

  test("check: a shared config whose LiteLLM drops the memory id says so, with the lines to add", async () => {
    const path = file(
      "no-forwarding.yaml",
      "model_list:\n  - model_name: gpt-4o\n    litellm_params: {model: openai/gpt-4o, api_base: \"https://api.supermemory.ai/v3/https://api.openai.com/v1\", " +
        "api_key: os.environ/OPENAI_API_KEY, extra_headers: {x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY}}\n" +
        "general_settings: {master_key: os.environ/LITELLM_MASTER_KEY}\n",
    );
    const r = await run(["check", "--config", path], { LITELLM_MASTER_KEY: "sk-check-test-master-key-0123456789", SUPERMEMORY_API_KEY: "sm" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  memory id forwarding: off\n");
    expect(r.stdout).toContain(
      `warning: ${path}: LiteLLM does not forward client headers to the provider, so x-sm-user-id never reaches Supermemory. Fix:\n    general_settings:\n      forward_client_headers_to_llm_api: true\n`,
    );
  });

  test("check: an invalid config lists every problem with file and path, exit 1", async () => {
    const path = file("bad.yaml", `user_id_mappings:\n  header_patterns:\n    - {pattern: "ok", user_id: a}\n    - {pattern: "[", user_id: b}\nmemproxy:\n  listen: {port: -1}\n`);
    const r = await run(["check", "--config", path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${path}: user_id_mappings.header_patterns[1].pattern: invalid regular expression`);
    expect(r.stderr).toContain(`${path}: memproxy.listen.port: must be at least 0`);
  });

  test("a bad config stops the server from starting", async () => {
    const path = file("bad2.yaml", `litellm_backend_url: os.environ/MEMPROXY_TEST_UNSET_URL\n`);
    const r = await run(["--config", path, "--port", "0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${path}: litellm_backend_url: environment variable MEMPROXY_TEST_UNSET_URL is not set`);
    expect(r.stdout).not.toContain("listening");
  });

  test("explain prints the routing decision without a server", async () => {
    const r = await run(["explain", "-H", "User-Agent: claude-cli/2.1.197 (external, cli)"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ user_id: "claude-cli", custom_header_present: false, is_default: false });
    const custom = await run(["explain", "-H", "User-Agent: claude-cli/2", "-H", "x-memory-user-id: proj-x"]);
    expect(JSON.parse(custom.stdout)).toMatchObject({ user_id: "proj-x", custom_header_present: true });
    const bad = await run(["explain", "-H", "x-memory-user-id: has space"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("x-memory-user-id");
  });

  test("explain decides as the server would under memproxy.access: an ignored custom header, an id not allowed", async () => {
    const ignored = file("access-ignored.yaml", "memproxy:\n  access:\n    custom_header: false\n");
    const r = await run(["explain", "--config", ignored, "-H", "x-memory-user-id: proj-x", "-H", "User-Agent: claude-cli/2"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ user_id: "claude-cli", decided_by: "builtin" });
    const limited = file("access-limited.yaml", "memproxy:\n  access:\n    allowed_user_ids: [alice]\n");
    const refused = await run(["explain", "--config", limited, "-H", "x-memory-user-id: alice2"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('403: The x-memory-user-id value "alice2" is not among the user ids this memproxy allows');
    expect(JSON.parse((await run(["explain", "--config", limited, "-H", "x-memory-user-id: alice"])).stdout)).toMatchObject({ user_id: "alice" });
  });

  test("headers over Bun's own 16 KiB limit reach memproxy: its limit answers, in the OpenAI shape", async () => {
    await using backend = startBackend();
    const cfg = file("headers.yaml", `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  limits: {max_header_size: 24KiB}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg], { cwd: dir });
    const url = await mp.listening();
    // 20 KB is under memproxy's limit: not refused by memproxy (the test backend, a Bun.serve with the default limit, refuses it itself).
    const under = await fetch(url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-big": "y".repeat(20_000) } });
    expect(under.headers.get("x-request-id")).not.toBeNull();
    for (const size of [30_000, 300_000]) {
      const over = await fetch(url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-big": "y".repeat(size) } });
      expect(over.status).toBe(431);
      const body = (await over.json()) as { error: { message: string; code: string } };
      expect(body.error.code).toBe("request_too_large");
      expect(body.error.message).toContain("memproxy.limits.max_header_size");
    }
    expect(backend.received).toHaveLength(0);
  });

  test("runs on the embedded default config, forwards with the injected id, and stops on SIGTERM", async () => {
    await using backend = startBackend();
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { cwd: dir });
    const url = await mp.listening();
    expect(url).toStartWith("http://127.0.0.1:");
    const res = await fetch(url + "/v1/messages?beta=true", {
      method: "POST",
      body: "{}",
      headers: { "user-agent": "claude-cli/2.1.197 (external, cli)", "x-sm-user-id": "someone-else" },
    });
    expect(res.status).toBe(200);
    expect(backend.received[0]!.path).toBe("/v1/messages?beta=true");
    expect(backend.received[0]!.headers.get("x-sm-user-id")).toBe("claude-cli");
    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
  });

  test.skipIf(process.platform !== "linux")("re-executes itself with its Bun settings, keeping any the user set", async () => {
    await using mp = spawnMemproxy([bin, "--port", "0"], { cwd: dir, env: { BUN_CONFIG_MAX_HTTP_REQUESTS: "4096", BUN_JSC_numberOfGCMarkers: undefined, BUN_OPTIONS: undefined } });
    await mp.listening();
    // The same process (a service manager's PID) now runs with the settings in its environment.
    const env = new Map(
      readFileSync(`/proc/${mp.proc.pid}/environ`, "utf8")
        .split("\0")
        .filter(Boolean)
        .map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
    );
    expect(env.get("BUN_JSC_numberOfGCMarkers")).toBe("1");
    expect(env.get("BUN_OPTIONS")).toBe("--max-http-header-size=524288");
    expect(env.get("BUN_CONFIG_MAX_HTTP_REQUESTS")).toBe("4096");
  });

  test("SIGINT stops it too", async () => {
    await using mp = spawnMemproxy([bin, "--port", "0"], { cwd: dir });
    await mp.listening();
    mp.proc.kill("SIGINT");
    expect(await mp.exited).toBe(0);
  });

  test("a port in use is a clear error at start, exit 1; with a file, it names the file's setting too", async () => {
    await using busy = startBackend();
    const r = await run(["--port", String(busy.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`127.0.0.1:${busy.port}: the port is already in use`);
    const path = file("busy.yaml", `memproxy:\n  listen: {port: ${busy.port}}\n`);
    const withFile = await run(["--config", path]);
    expect(withFile.code).toBe(1);
    expect(withFile.stderr).toContain(`choose another port with --port or memproxy.listen.port in ${path}.\n`);
  });

  test("a second memproxy on the port of a running one is refused, not started beside it", async () => {
    await using first = spawnMemproxy([bin, "--port", "0"], { cwd: dir });
    const url = await first.listening();
    const port = new URL(url).port;
    const second = await run(["--port", port]);
    expect(second.code).toBe(1);
    expect(second.stderr).toBe(
      `memproxy: cannot listen on 127.0.0.1:${port}: the port is already in use (another memproxy, perhaps the service?). Stop the other program, or choose another port with --port.\n`,
    );
    expect(second.stdout).not.toContain("listening");
  });

  test("at start it says plainly what answers at the backend, and /health keeps what it found", async () => {
    const dead = startBackend();
    await dead.stop();
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", dead.url], { cwd: dir });
    const url = await mp.listening();
    const line = JSON.parse(await mp.waitForLine("nothing answers at"));
    expect(line).toMatchObject({ level: "warn", backend: dead.url });
    expect(line.msg).toBe(`nothing answers at ${dead.url} (connection refused: nothing listens there): start LiteLLM there, or run memproxy with --spawn-litellm`);
    const health = (await (await fetch(url + "/health")).json()) as { backends: unknown[] };
    expect(health.backends[0]).toMatchObject({ status: "down", last_error: "connection refused: nothing listens there" });
    // The status page says what /health says.
    const page = (await (await fetch(url + "/ui/api/state")).json()) as { backends: unknown[] };
    expect(page.backends[0]).toMatchObject({ status: "down", last_error: "connection refused: nothing listens there" });
    // The start line names the page.
    expect(JSON.parse(mp.lines[0]!)).toMatchObject({ msg: expect.stringContaining(`(status page: ${url}/)`), page: `${url}/` });
    await using live = startBackend();
    await using ok = spawnMemproxy([bin, "--port", "0", "--backend", live.url], { cwd: dir });
    await ok.listening();
    expect(JSON.parse(await ok.waitForLine("answers"))).toMatchObject({ level: "info", msg: `backend ${live.url} answers` });
  });

  test("setup: the tools it knows, and one tool's settings for this memproxy's address", async () => {
    const list = await run(["setup"]);
    expect(list.code).toBe(0);
    for (const key of ["claude-code", "codex", "gemini-cli", "qwen-code", "opencode"]) expect(list.stdout).toContain(key);
    const claude = await run(["setup", "claude-code", "--port", "9123"]);
    expect(claude.code).toBe(0);
    expect(claude.stdout).toContain("export ANTHROPIC_BASE_URL=http://127.0.0.1:9123");
    expect(claude.stdout).toContain("x-memory-user-id");
    const unknown = await run(["setup", "frobnicator"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no tool named 'frobnicator'");
  });

  test("setup changes no file: every tool's text, run in an empty folder with an empty HOME, leaves both empty", async () => {
    using work = tempDir("setup-cwd");
    using home = tempDir("setup-home");
    const env = { PATH: process.env.PATH!, HOME: home.path, XDG_CONFIG_HOME: join(home.path, ".config") };
    const list = await runToEnd([bin, "setup"], { cwd: work.path, env });
    const tools = list.stdout.split("\n").map((l) => /^  ([a-z0-9-]+)\s{2,}/.exec(l)?.[1]).filter((t): t is string => Boolean(t) && t !== "tool");
    expect(tools.length).toBeGreaterThan(15);
    for (const tool of tools) expect((await runToEnd([bin, "setup", tool], { cwd: work.path, env })).code).toBe(0);
    expect(readdirSync(work.path)).toEqual([]);
    expect(readdirSync(home.path)).toEqual([]);
  });

  test("errors a user can cause are one or two plain lines: no stack, no bundle source", async () => {
    const unreadable = file("unreadable.yaml", "user_id_mappings: {}\n");
    const { chmodSync } = await import("node:fs");
    chmodSync(unreadable, 0o000);
    const cases: [string[], RegExp][] = [
      [["--config", tmp.file("missing.yaml")], /file not found\. Pass an existing YAML file to --config; to start one, copy config\.example\.yaml/],
      [["check", "--config", dir], /it is a directory; pass the YAML file inside it/],
      [["--port", "70000"], /^--port: must be at most 65535, got 70000$/m],
      [["--backend", "ftp://x"], /^--backend: expected an http:\/\/ or https:\/\/ URL without query or fragment, got "ftp:\/\/x"$/m],
      [["--litellm-port", "0"], /^--litellm-port: must be at least 1, got 0$/m],
      [["--frobnicate"], /^memproxy: unknown option '--frobnicate'\nRun 'memproxy --help' for usage\.\n$/],
      [["--port"], /^memproxy: -p, --port needs a value\n/],
      [["frobnicate"], /unknown command 'frobnicate'/],
      [["explain", "-H", "no colon"], /-H: expected 'Name: value', got 'no colon'/],
      [["setup", "a", "b"], /unexpected argument 'b'/],
    ];
    // Root reads any file: the unreadable one says "permission denied" only for others.
    if (process.getuid?.() !== 0) cases.push([["check", "--config", unreadable], /permission denied; make the file readable/]);
    for (const [args, message] of cases) {
      const r = await run(args);
      expect(r.code).toBeGreaterThan(0);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.split("\n").filter(Boolean).length).toBeLessThanOrEqual(3);
      expect(r.stderr).not.toMatch(STACK_LINE);
      expect(r.stdout).not.toContain("listening");
    }
  });

  test("a refused request is logged with its code, the bytes really sent and the id it would have had", async () => {
    await using backend = startBackend();
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { cwd: dir });
    const url = await mp.listening();
    const bad = await fetch(url + "/v1/messages", { method: "POST", body: "{}", headers: { "x-memory-user-id": "has space", "x-request-id": "cli-refused-1" } });
    const body = await bad.text();
    expect(bad.status).toBe(400);
    expect(JSON.parse(await mp.waitForLine("cli-refused-1"))).toMatchObject({
      level: "info",
      status: 400,
      user_id: "default-dev",
      decided_by: "default",
      error_code: "invalid_user_id",
      bytes_out: Buffer.byteLength(body),
      error: expect.stringContaining("x-memory-user-id"),
    });
    expect(backend.received).toHaveLength(0);
  });

  test("under systemd (stdout is the journal stream named in JOURNAL_STREAM) lines carry syslog levels", async () => {
    const { fstatSync, openSync, closeSync, readFileSync: read } = await import("node:fs");
    const out = tmp.file("journal.out");
    const fd = openSync(out, "w");
    const st = fstatSync(fd);
    const proc = Bun.spawn([bin, "--port", "0", "--backend", "http://127.0.0.1:9"], {
      cwd: dir,
      env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` },
      stdout: fd,
      stderr: "pipe",
    });
    closeSync(fd);
    // What it writes to the file, line by line as it comes (tail -f follows the file).
    const follow = Bun.spawn(["tail", "-n", "+1", "-f", out], { stdout: "pipe", stderr: "ignore" });
    const { log } = LineLog.of(follow);
    await log.waitFor("nothing answers");
    follow.kill();
    proc.kill("SIGTERM");
    await proc.exited;
    const written = read(out, "utf8").trim().split("\n");
    expect(written.find((l) => l.includes("listening on"))).toMatch(/^<6>memproxy \S+ listening on http:\/\/127\.0\.0\.1:\d+ /);
    expect(written.find((l) => l.includes("nothing answers"))).toMatch(/^<4>nothing answers at http:\/\/127\.0\.0\.1:9 /);
    expect(written.every((l) => /^<\d>/.test(l))).toBe(true);
  });

  test("on a terminal, short readable lines in colour; NO_COLOR turns the colour off", async () => {
    if (!Bun.which("script")) return void console.warn("cli.test.ts: no script(1) to give memproxy a terminal; skipped");
    await using backend = startBackend();
    for (const noColor of [false, true]) {
      const out = tmp.file(`tty-${noColor}.out`);
      // script(1) gives memproxy a pseudo-terminal as stdout; what it writes there lands in `out`.
      const cmd = `${bin} --port 0 --backend ${backend.url}`;
      const proc = Bun.spawn(["script", "-q", "-f", "-c", cmd, out], {
        cwd: dir,
        env: { ...process.env, ...(noColor ? { NO_COLOR: "1" } : {}) },
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
      });
      const { log } = LineLog.of(proc);
      const started = await log.waitFor(/listening on http/);
      const url = /listening on (http:\/\/[^\s\x1b]+)/.exec(started)![1]!;
      await (await fetch(url + "/v1/models", { headers: { "user-agent": "claude-cli/2.1.197 (external, cli)", "x-request-id": `tty-${noColor}` } })).text();
      const line = await log.waitFor(`tty-${noColor}`);
      expect(line.includes("\x1b[")).toBe(!noColor);
      const plain = line.replace(/\x1b\[[0-9;]*m/g, "").trim();
      expect(plain).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} INFO  claude-cli\\s+GET  /v1/models\\s+200\\s+\\d+ms  #tty-${noColor}$`));
      expect(started).not.toContain("{");
      proc.kill("SIGTERM");
      await proc.exited;
    }
  });

  test("doctor reads LiteLLM's own file when memproxy.litellm.config names one, and says which file to start LiteLLM on", async () => {
    const example = readFileSync(join(import.meta.dir, "..", "config.example.yaml"), "utf8");
    const litellm = file("litellm-own.yaml", example.slice(example.indexOf("model_list:"), example.indexOf("user_id_mappings:")));
    const memproxy = file("memproxy-apart.yaml", `litellm_backend_url: http://127.0.0.1:9\nmemproxy:\n  listen: {port: 9}\n  litellm:\n    config: ${litellm}\n`);
    const keys = { LITELLM_MASTER_KEY: "sk-doctor-cli-master-key-0123456789", SUPERMEMORY_API_KEY: "sm", OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" };
    const r = await run(["doctor", "--no-live", "--config", memproxy], keys);
    expect(r.stdout).toContain("[ok] forwarding: LiteLLM forwards x-sm-user-id for every model (gpt-4o, claude-*)");
    expect(r.stdout).toContain(`start LiteLLM on its file: litellm --config ${litellm} --port 9`);
    expect(r.code).toBe(1); // nothing listens at :9

    const missing = file("memproxy-missing.yaml", `memproxy:\n  litellm:\n    config: ${dir}/no-such-litellm.yaml\n`);
    const m = await run(["doctor", "--no-live", "--config", missing]);
    expect(m).toMatchObject({ code: 1, stdout: "" });
    expect(m.stderr).toBe(
      `${missing}: memproxy.litellm.config: cannot read ${dir}/no-such-litellm.yaml: file not found. Point memproxy.litellm.config at LiteLLM's config file\n` +
        "memproxy: the configuration is invalid; nothing was started.\n",
    );
  });

  test("help is a command too", async () => {
    const help = await run(["help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("memproxy setup [TOOL]");
  });

  test("a stream that pauses, or a backend that thinks before its head, longer than the connection idle timeout is not cut", async () => {
    await using fixture = spawnMemproxy([process.execPath, join(import.meta.dir, "support", "paused-sse-fixture.ts")], {
      env: { PAUSE_MS: "7000" },
    });
    const backendUrl = await fixture.waitForLine("http://");
    // idle_timeout 1s (Bun cuts a silent connection after 1-5 s: its timer ticks every 4 s): a proxied
    // call silent for 7 s, mid-stream or before its head, is cut unless memproxy lifts it.
    const cfg = file("pause.yaml", `litellm_backend_url: ${backendUrl}\nmemproxy:\n  listen: {port: 0, idle_timeout: 1}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg], { cwd: dir });
    const url = await mp.listening();
    // The slow head is asked with a GET: Bun does not apply the idle timeout once a request's body has been read.
    const [stream, slowHead] = await Promise.all([
      fetch(url + "/v1/chat/completions", { method: "POST", body: "{}", headers: { "x-memory-user-id": "thinker" } }).then((r) => r.text()),
      fetch(url + "/slow-head", { headers: { "x-memory-user-id": "slow" } }).then(async (r) => [r.status, await r.json()]),
    ]);
    expect(stream).toBe('data: {"seen_user":"thinker"}\n\ndata: after-pause\n\n');
    expect(slowHead).toEqual([200, { seen_user: "slow", after_ms: 7000 }]);
  });
});


describe("graceful shutdown (compiled)", () => {
  const sse = manualStream;

  test("SIGTERM during a live stream: no new connections, the stream finishes, exit 0", async () => {
    const stream = sse();
    await using backend = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { cwd: dir });
    const url = await mp.listening();
    const pending = fetch(url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: 1\n\n");
    const res = await pending;
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let got = dec.decode((await reader.read()).value);
    mp.proc.kill("SIGTERM");
    await mp.waitForLine("shutting down");
    expect(await fetch(url + "/health/liveliness").catch((e) => e)).toBeInstanceOf(Error);
    stream.send("data: 2\n\n");
    stream.send("data: [DONE]\n\n");
    stream.close();
    for (let r = await reader.read(); !r.done; r = await reader.read()) got += dec.decode(r.value);
    expect(got).toBe("data: 1\n\ndata: 2\n\ndata: [DONE]\n\n");
    expect(await mp.exited).toBe(0);
  });

  test("a stream still running at the drain timeout is cut, logged and counted; exit 0", async () => {
    const stream = sse();
    await using backend = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    const cfg = file("drain.yaml", `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  shutdown: {drain_timeout: 300ms}\n`);
    await using mp = spawnMemproxy([bin, "--config", cfg], { cwd: dir });
    const url = await mp.listening();
    const pending = fetch(url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: 1\n\n");
    const res = await pending;
    mp.proc.kill("SIGTERM");
    // Cut: the body ends in an error or short, with only what was sent before the cut.
    const body = await res.text().then((text) => ({ text }), (error: unknown) => ({ error }));
    if ("text" in body) expect(body.text).toBe("data: 1\n\n");
    else expect(body.error).toBeInstanceOf(Error);
    expect(await mp.waitForLine("cut 1 request(s)")).toContain('"cut":1');
    expect(await mp.exited).toBe(0);
  });

  test("a second signal exits at once", async () => {
    const stream = sse();
    await using backend = startBackend(() => new Response(stream.body, { headers: { "content-type": "text/event-stream" } }));
    await using mp = spawnMemproxy([bin, "--port", "0", "--backend", backend.url], { cwd: dir });
    const url = await mp.listening();
    const pending = fetch(url + "/v1/chat/completions", { method: "POST", body: "{}" });
    stream.send("data: 1\n\n");
    await pending;
    mp.proc.kill("SIGTERM");
    await mp.waitForLine("shutting down");
    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(1);
    expect(mp.lines.join("\n")).toContain("second SIGTERM, exiting at once");
  });
});
