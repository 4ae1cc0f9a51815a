// The fault suite (issue 20): each way found to stall, crash or open memproxy, run against the compiled binary.
// Each test of a fix fails on a binary built without it. Where Bun 1.4.5 itself decides (pipelining, Expect,
// differing Content-Length), the test asserts what Bun does now, as README documents it, so that a Bun that
// changes it shows up here.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, openSync, closeSync, ftruncateSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { readJson, startBackend } from "../support/backend.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "../support/memproxy.ts";
import { freePort, LineLog, runToEnd, tempDir } from "../support/process.ts";
import { aliasBomb, replaceFile, STACK_LINE } from "../support/files.ts";
import { parsePrometheus, sampleValue } from "../support/prometheus.ts";
import { rawExchange } from "../support/raw-http.ts";

let bin: string;
beforeAll(async () => {
  bin = await compiledBinary();
});

const KEY = "a-strong-access-key-0123456789";
const AUTH = { authorization: `Bearer ${KEY}` };

/** Starts the binary on a config file written from `text`; resolves once it listens. */
async function started(dir: { file(name: string): string }, text: string): Promise<{ mp: MemproxyProcess; url: string; port: number; path: string }> {
  const path = dir.file("config.yaml");
  writeFileSync(path, text);
  const mp = spawnMemproxy([bin, "--config", path]);
  const url = await mp.listening();
  return { mp, url, port: Number(new URL(url).port), path };
}

/** A sample's value in memproxy's /metrics. */
async function metric(url: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sampleValue(parsePrometheus(await (await fetch(`${url}/metrics`)).text()), name, labels);
}

/** A client connection written and read by hand: what arrived, and whether the server closed it. */
async function rawConnection(port: number) {
  let text = "";
  let closed = false;
  const waiters: (() => void)[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  const dec = new TextDecoder();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, d) {
        text += dec.decode(d, { stream: true });
        wake();
      },
      close() {
        closed = true;
        wake();
      },
      error() {
        closed = true;
        wake();
      },
    },
  });
  return {
    get text() {
      return text;
    },
    get closed() {
      return closed;
    },
    write(raw: string) {
      socket.write(raw);
      socket.flush();
    },
    /** Resolves with everything received once `done(text)` holds, or once the server closed the connection. */
    async until(done: (text: string) => boolean): Promise<string> {
      while (!done(text) && !closed) await new Promise<void>((r) => waiters.push(r));
      return text;
    },
    end: () => socket.end(),
  };
}

/** Complete HTTP/1.1 answers in `text` (heads with a Content-Length and their whole bodies). */
function answers(text: string): { head: string; status: number; body: string }[] {
  const out = [];
  let at = 0;
  for (;;) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) return out;
    const head = text.slice(at, end);
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(head)?.[1] ?? 0);
    if (text.length < end + 4 + length) return out;
    out.push({ head, status, body: text.slice(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
}

/**
 * The held backend (held-backend-fixture.ts) as a child process that takes headers as large as memproxy does:
 * its output lines, and `release()` to let its answers go.
 */
function heldBackend() {
  const proc = Bun.spawn([process.execPath, "--max-http-header-size=524288", join(import.meta.dir, "support", "held-backend-fixture.ts")], {
    stdin: "pipe",
    stdout: "pipe",
    stderr: "inherit",
    // It dies with the test runner, however the runner ends.
    env: { BUN_FEATURE_FLAG_NO_ORPHANS: "1", ...process.env },
  });
  const { log } = LineLog.of(proc);
  return {
    log,
    release() {
      proc.stdin.write("release\n");
      proc.stdin.flush();
    },
    async [Symbol.asyncDispose]() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

// Point 1. Rules a user could write, which a backtracking engine runs for minutes or without end on the values
// below: Python's re (LiteLLM's and the original design's), and JavaScript's too on the long polynomial ones
// (on the nested ones it gives up after about 0.6 s per value and answers "no match").
const HOSTILE_RULES = `user_id_mappings:
  builtin_rules: false
  derive_from_user_agent: false
  default_user_id: nobody
  header_patterns:
    - {pattern: '.*a.*a.*a.*b', user_id: polyab}
    - {pattern: '(?i).*vscode.*copilot.*chat', user_id: copilot}
    - {pattern: 'Mozilla/5\\.0 .*Chrome/.*Safari/.*Edg/', user_id: edge}
    - {pattern: '(a+)+$', user_id: nested}
    - {header: x-title, pattern: '(x+x+)+y', user_id: titled}
`;

describe("no header value can stall memproxy (ReDoS, point 1)", () => {
  test("ten hostile User-Agents at once: liveliness answers while they are in flight, each gets its rule's answer, SIGTERM stops it cleanly", async () => {
    await using backend = heldBackend();
    const port = Number((await backend.log.waitFor(/^listening \d+$/)).split(" ")[1]);
    using dir = tempDir("redos");
    const { mp, url } = await started(dir, `litellm_backend_url: http://127.0.0.1:${port}\n${HOSTILE_RULES}memproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    // Rules read the first 8 KiB of a value (router.ts MATCHED_LENGTH): the values that must match do so within
    // it; the longest are there for their cost. A backtracking engine spends minutes on several of them.
    const chromeLike = (n: number) => "Mozilla/5.0 " + "Chrome/ Safari/ ".repeat(n);
    const cases: [probe: string, headers: Record<string, string>, userId: string][] = [
      ["5000 a,", { "user-agent": "a,".repeat(5000) }, "nobody"],
      ["4000 a, then b", { "user-agent": "a,".repeat(4000) + "b" }, "polyab"],
      ["60 KB vscode copilot", { "user-agent": "vscode copilot ".repeat(4000) }, "nobody"],
      ["8 KB VSCODE Copilot then Chat", { "user-agent": "VSCODE Copilot ".repeat(540) + "Chat" }, "copilot"],
      ["60 KB Chrome Safari", { "user-agent": chromeLike(3750) }, "nobody"],
      ["8 KB Chrome Safari then Edg", { "user-agent": chromeLike(500) + "Edg/120.0" }, "edge"],
      ["8000 a then !", { "user-agent": "a".repeat(8000) + "!" }, "nobody"],
      // Longer than what rules read: `$` does not match where the reading stops (more follows), as in Python.
      ["60 KB a then !", { "user-agent": "a".repeat(60_000) + "!" }, "nobody"],
      ["60 KB x-title", { "user-agent": "tool", "x-title": "x".repeat(60_000) }, "nobody"],
      ["8000 x-title then y", { "user-agent": "tool", "x-title": "x".repeat(8000) + "y" }, "titled"],
    ];
    let settled = 0;
    const hostile = cases.map(([probe, headers]) =>
      fetch(`${url}/v1/chat/completions`, { method: "POST", body: '{"model":"m"}', headers: { ...headers, "content-type": "application/json", "x-probe": probe } }).then(
        (r) => (settled++, r.status),
        (e: Error) => (settled++, `${probe}: ${e.message}`),
      ),
    );
    // Liveliness is asked again and again until every hostile request has been routed and forwarded (the
    // backend holds them): each answer comes while the hostile ones are in flight.
    const received = () => backend.log.all.filter((l) => l.startsWith("received "));
    const live: number[] = [];
    do live.push((await fetch(`${url}/health/liveliness`)).status);
    while (received().length < cases.length && settled === 0);
    expect(settled).toBe(0);
    expect(live.every((s) => s === 200)).toBe(true);
    const routed = Object.fromEntries(received().map((l) => JSON.parse(l.slice("received ".length))).map((r) => [r.probe, r.user_id]));
    expect(routed).toEqual(Object.fromEntries(cases.map(([probe, , userId]) => [probe, userId])));

    // SIGTERM is handled while they are in flight; they finish, then memproxy exits cleanly.
    const mark = mp.lines.length;
    mp.proc.kill("SIGTERM");
    await mp.waitForLine("received SIGTERM, shutting down", mark);
    backend.release();
    const statuses = await Promise.all(hostile);
    expect(statuses).toEqual(cases.map(() => 200));
    expect(await mp.exited).toBe(0);
    expect(mp.lines.at(-1)).toContain("stopped");
  });

  test("hostile custom-header values against allowed_user_ids, ten at once: each refused or admitted as the list says, while liveliness answers", async () => {
    await using backend = startBackend();
    using dir = tempDir("redos-ids");
    const { mp, url } = await started(
      dir,
      `litellm_backend_url: ${backend.url}
memproxy:
  listen: {port: 0}
  access:
    allowed_user_ids: ['.*a.*a.*a.*b', '(a+)+$', '(?i).*vscode.*copilot.*chat', '(\\w+)*x|\\w+-ok', alice]
`,
    );
    await using _mp = mp;
    const ask = (id: string) =>
      fetch(`${url}/v1/chat/completions`, { method: "POST", body: "{}", headers: { "x-memory-user-id": id, "content-type": "application/json" } });
    // Memory ids are at most 100 characters of A-Z a-z 0-9 _ : -, which is enough for a backtracking engine:
    // Python's re runs without end on these, and JavaScript's gives up after about 0.6 s each and answers "no
    // match", which refuses the last id admitted below.
    const refused = ["a:".repeat(50), "a".repeat(99) + ":", "a".repeat(99) + "-", "vscode-copilot-".repeat(6) + "x", "aaaa".repeat(24) + "a:b:"];
    const hostile = [...refused, ...refused].map(ask);
    const live = await fetch(`${url}/health/liveliness`);
    expect(live.status).toBe(200);
    const answered = await Promise.all(hostile.map(async (r) => [(await r).status, (await readJson(await r)).error.code]));
    expect(answered).toEqual(hostile.map(() => [403, "forbidden_user_id"]));
    const admitted = ["a".repeat(99) + "b", "a".repeat(100), "VSCODE_copilot_chat", "alice", "a".repeat(97) + "-ok"];
    for (const id of admitted) expect((await ask(id)).status).toBe(200);
    expect(backend.received.map((r) => r.headers.get("x-sm-user-id"))).toEqual(admitted);
  });

  // `.*a.{400}b` is linear too, but its automaton is too large to cache: one decision on 8 KiB of random a and c
  // took about 70 ms here, of a and b about 20 ms (the rules above: under 0.4 ms each).
  test("check marks a rule whose decisions cost milliseconds on hostile values, and not the usual ones", async () => {
    using dir = tempDir("redos-check");
    const path = dir.file("config.yaml");
    writeFileSync(path, `${HOSTILE_RULES}    - {pattern: '.*a.{400}b', user_id: counted}\n    - {pattern: 'claude-cli/', user_id: claude}\n`);
    const check = await runToEnd([bin, "check", "--config", path]);
    expect(check.code).toBe(0);
    const rules = check.stdout.split("\n").filter((l) => /^\s+\[\d+\] /.test(l));
    expect(rules.map((l) => [/-> (\S+)/.exec(l)![1], l.includes("costly on hostile values")])).toEqual([
      ["polyab", false],
      ["copilot", false],
      ["edge", false],
      ["nested", false],
      ["titled", false],
      ["counted", true],
      ["claude", false],
    ]);
  });

  test("patterns the linear-time engine cannot run (backreferences, lookarounds) are refused at load, by check and at start, naming the path", async () => {
    using dir = tempDir("redos-refused");
    const path = dir.file("config.yaml");
    writeFileSync(
      path,
      `user_id_mappings:
  header_patterns:
    - {pattern: '(a)\\1', user_id: backref}
    - {pattern: 'foo(?=bar)', user_id: ahead}
    - {pattern: '(?<!x)y', user_id: behind}
memproxy:
  access:
    allowed_user_ids: ['(?<=a)b']
`,
    );
    const check = await runToEnd([bin, "check", "--config", path]);
    expect(check.code).toBe(1);
    const refusals = check.stderr.trim().split("\n");
    const refusal = (at: string, what: string) => `${path}: ${at}: invalid regular expression: ${what} is not supported: memproxy matches patterns in linear time`;
    expect(refusals).toHaveLength(5);
    expect(refusals[0]).toStartWith(refusal("user_id_mappings.header_patterns[0].pattern", "backreference \\1 at position 3"));
    expect(refusals[1]).toStartWith(refusal("user_id_mappings.header_patterns[1].pattern", "lookahead (?= at position 3"));
    expect(refusals[2]).toStartWith(refusal("user_id_mappings.header_patterns[2].pattern", "negative lookbehind (?<! at position 0"));
    expect(refusals[3]).toStartWith(refusal("memproxy.access.allowed_user_ids[0]", "lookbehind (?<= at position 0"));
    expect(refusals[4]).toBe("memproxy: the configuration is invalid; nothing was started.");
    expect(check.stderr).not.toMatch(STACK_LINE);
    const run = await runToEnd([bin, "--config", path]);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(check.stderr);
  });
});

// Point 2. A model_list that shares one block of settings through an anchor, as large LiteLLM configs do.
function sharedAnchorConfig(backend: string, models: number): string {
  const lines = [`litellm_backend_url: ${backend}`, "memproxy:", "  listen: {port: 0}", "model_list:"];
  lines.push("  - model_name: m0", "    litellm_params: &shared", "      model: openai/gpt-4o", "      api_base: http://127.0.0.1:9/v1", "      api_key: sk-none");
  for (let i = 1; i <= models; i++) lines.push(`  - {model_name: m${i}, litellm_params: *shared}`);
  return lines.join("\n") + "\n";
}

describe("YAML aliases (point 2)", () => {
  test("a model_list that uses one anchor 150 times passes check and starts", async () => {
    await using backend = startBackend();
    using dir = tempDir("anchors");
    const text = sharedAnchorConfig(backend.url, 150);
    writeFileSync(dir.file("check.yaml"), text);
    const check = await runToEnd([bin, "check", "--config", dir.file("check.yaml")]);
    expect(check.stderr).toBe("");
    expect(check.code).toBe(0);
    expect(check.stdout).toStartWith(`${dir.file("check.yaml")}: OK\n`);
    const { mp, url } = await started(dir, text);
    await using _mp = mp;
    expect((await fetch(`${url}/v1/models`)).status).toBe(200);
    expect(mp.lines.join("\n")).not.toMatch(/Excessive alias/i);
    expect(mp.lines.join("\n")).not.toMatch(STACK_LINE);
  });

  const python = join(process.env.MEMPROXY_CACHE_DIR || join(homedir(), ".cache", "memproxy"), "litellm-1.108.7", "venv", "bin", "python");
  test.skipIf(!existsSync(python) && !process.env.CI)("LiteLLM's own YAML loader (PyYAML in its venv) loads that file too", async () => {
    using dir = tempDir("aliases-py");
    writeFileSync(dir.file("c.yaml"), sharedAnchorConfig("http://127.0.0.1:9", 150));
    const r = await runToEnd([python, "-c", "import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); print(len(d['model_list']), d['model_list'][150]['litellm_params']['model'])", dir.file("c.yaml")]);
    expect(r.stdout.trim()).toBe("151 openai/gpt-4o");
  });

  test("an alias bomb is refused at start and by check, with one clear line and no stack", async () => {
    using dir = tempDir("bomb");
    const path = dir.file("config.yaml");
    writeFileSync(path, "memproxy:\n  listen: {port: 0}\n" + aliasBomb());
    for (const cmd of [[bin, "check", "--config", path], [bin, "--config", path]]) {
      const r = await runToEnd(cmd);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr.trim().split("\n")).toEqual([
        `${path}: (top level): the YAML expands to more than 1000000 values through its aliases; memproxy refuses it`,
        "memproxy: the configuration is invalid; nothing was started.",
      ]);
      expect(r.stderr).not.toMatch(STACK_LINE);
    }
  });
});

// Point 4. Every place a backend URL is shown, with a password in it.
describe("passwords in backend URLs (point 4)", () => {
  test("never in check, the startup lines, the marked-down and retry lines, /health, the 502 body, metrics, the status page or a reload's warning", async () => {
    const dead = freePort();
    await using first = startBackend(() => Response.json({ ok: true }));
    await using live = startBackend(() => Response.json({ ok: true }));
    using dir = tempDir("password");
    const config = (secret: string) =>
      `litellm_backend_url:\n  - http://svc:${secret}@127.0.0.1:${first.port}\n  - http://svc:${secret}@127.0.0.1:${live.port}\n  - http://svc:${secret}@127.0.0.1:${dead}\n` +
      "memproxy:\n  listen: {port: 0}\n  backends: {cooldown: 60}\n";
    const seen: string[] = [];

    writeFileSync(dir.file("check.yaml"), config("secret"));
    const check = await runToEnd([bin, "check", "--config", dir.file("check.yaml")]);
    expect(check.code).toBe(0);
    seen.push(check.stdout, check.stderr);
    expect(check.stdout).toContain(`@127.0.0.1:${dead}`);

    const { mp, url, path } = await started(dir, config("secret"));
    await using _mp = mp;
    await mp.waitForLine(`nothing answers at http://svc:[redacted]@127.0.0.1:${dead}`);
    await mp.waitForLine(`backend http://svc:[redacted]@127.0.0.1:${live.port} answers`);
    const body = '{"model":"m"}';
    const post = () => fetch(`${url}/v1/chat/completions`, { method: "POST", body, headers: { "content-type": "application/json" } });
    // The first backend stops: the next call goes to it (the first of the backends up), is refused and is retried on another.
    await first.stop();
    const retried = await post();
    expect(retried.status).toBe(200);
    seen.push(await retried.text());
    await mp.waitForLine("backend marked down");
    await mp.waitForLine("retrying on another");
    const health = await fetch(`${url}/health`);
    const healthText = await health.text();
    seen.push(healthText);
    const backendAt = (port: number) => JSON.parse(healthText).backends.find((b: { url: string }) => b.url.endsWith(`:${port}`));
    for (const port of [first.port, dead]) expect(backendAt(port)).toMatchObject({ url: `http://svc:[redacted]@127.0.0.1:${port}`, status: "down", last_error: expect.any(String) });
    // The marked-down line's reason is the failed call's error, which names the backend.
    expect(mp.lines.find((l) => l.includes("backend marked down"))).toContain(`svc:[redacted]@127.0.0.1:${first.port}`);

    // All down: a 502 that names a backend.
    await live.stop();
    const failed = await post();
    expect(failed.status).toBe(502);
    const failedText = await failed.text();
    expect(failedText).toContain("[redacted]");
    seen.push(failedText);
    for (const page of ["/metrics", "/memory-routing/stats", "/ui/api/state"]) seen.push(await (await fetch(url + page)).text());

    // A reload that changes the backend (a new password) is worth a warning, which names the new backend.
    const mark = mp.lines.length;
    replaceFile(path, config("secret2"));
    await mp.waitForLine("config reloaded", mark);
    seen.push(await (await fetch(`${url}/health`)).text());

    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
    seen.push(...mp.lines);
    const leaks = seen.filter((text) => text.includes("secret"));
    expect(leaks).toEqual([]);
  });
});

// Point 5. An editor that truncates, then writes.
describe("an emptied config file (point 5)", () => {
  test("a request without a key never gets 200 while the file is emptied and rewritten, again and again", async () => {
    await using backend = startBackend();
    using dir = tempDir("emptied");
    const config = (n: number) =>
      `litellm_backend_url: ${backend.url}\nuser_id_mappings: {default_user_id: round-${n}}\nmemproxy:\n  listen: {port: 0}\n  access:\n    keys: ["${KEY}"]\n`;
    const { mp, url, path } = await started(dir, config(0));
    await using _mp = mp;
    let running = true;
    const statuses = new Map<number, number>();
    const keyless = (async () => {
      while (running) {
        const res = await fetch(`${url}/v1/models`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    })();
    for (let n = 1; n <= 6; n++) {
      const mark = mp.lines.length;
      writeFileSync(path, ""); // `: > config.yaml`
      // Half the rounds write at once, as an editor does; the others only once memproxy has seen the empty file.
      if (n % 2 === 0) await mp.waitForLine("config file is empty; keeping the running config", mark);
      writeFileSync(path, config(n));
      await mp.waitForLine("config reloaded", mark);
      await (await fetch(`${url}/v1/models`, { headers: AUTH })).arrayBuffer();
      expect(backend.received.at(-1)!.headers.get("x-sm-user-id")).toBe(`round-${n}`);
    }
    running = false;
    await keyless;
    expect([...statuses.keys()]).toEqual([401]);
    expect(statuses.get(401)).toBeGreaterThan(0);
    expect(backend.received.every((r) => r.headers.get("authorization") === AUTH.authorization)).toBe(true);
  });
});

// Point 6. Keys are configured so that what is tested is the path alone (memproxy may refuse unknown Hosts
// without keys).
describe("requests without a usable Host (point 6)", () => {
  test("HTTP/1.0 without Host, an empty Host and an invalid one: the backend gets the path exactly", async () => {
    await using backend = startBackend();
    using dir = tempDir("hostless");
    const { mp, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  access:\n    keys: ["${KEY}"]\n`);
    await using _mp = mp;
    const body = '{"model":"m"}';
    const rest = `Authorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`;
    const hosts = ["HTTP/1.1\r\nHost: 127.0.0.1", "HTTP/1.0", "HTTP/1.1\r\nHost:", "HTTP/1.1\r\nHost: not a host", "HTTP/1.1\r\nHost: a/b"];
    const targets = ["/v1/chat/completions", "/v1/chat/completions?beta=true", "/v1/x/../chat/completions", "//v1//chat/completions"];
    const arrived: string[][] = [];
    for (const target of targets) {
      const paths: string[] = [];
      for (const host of hosts) {
        const reply = await rawExchange(port, `POST ${target} ${host}\r\n${rest}`);
        expect(reply).toStartWith("HTTP/1.1 200 ");
        paths.push(backend.received.at(-1)!.path);
      }
      arrived.push(paths);
    }
    // The same path for every Host as with a valid one; the first exactly as sent.
    expect(arrived).toEqual(arrived.map((paths) => paths.map(() => paths[0]!)));
    expect(arrived.map((paths) => paths[0])).toEqual(["/v1/chat/completions", "/v1/chat/completions?beta=true", "/v1/chat/completions", arrived[3]![0]]);
    expect(backend.received.length).toBe(targets.length * hosts.length);
  });
});

// Point 7.
describe("Content-Length (point 7)", () => {
  test("two identical headers: forwarded with one value, a 200; two different ones: refused before anything is forwarded, not a backend error", async () => {
    await using backend = startBackend();
    using dir = tempDir("content-length");
    const { mp, url, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    const body = '{"model":"m"}';
    const head = "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n";
    const same = await rawExchange(port, `${head}Content-Length: ${body.length}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    expect(same).toStartWith("HTTP/1.1 200 ");
    expect(backend.received.length).toBe(1);
    expect(backend.received[0]!.headers.get("content-length")).toBe(String(body.length));
    expect(new TextDecoder().decode(backend.received[0]!.body)).toBe(body);

    // Bun 1.4.5's parser answers a bare 400 and closes the connection before memproxy sees the request, so
    // the answer is not in memproxy's error shape (README). memproxy's own check (http.ts contentLength)
    // answers in its shape should a Bun pass such a request on.
    for (const lengths of [[body.length, body.length + 1], [body.length + 1, body.length]]) {
      const reply = await rawExchange(port, `${head}${lengths.map((n) => `Content-Length: ${n}\r\n`).join("")}\r\n${body}`);
      expect(reply).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    }
    expect(backend.received.length).toBe(1);
    for (const kind of ["connect", "timeout", "5xx", "reset"]) expect(await metric(url, "memproxy_backend_errors_total", { kind })).toBe(0);
    expect((await fetch(`${url}/v1/models`)).status).toBe(200);
  });
});

// Point 8. Bun 1.4.5 (the newest on npm) closes a keep-alive connection when a request is pipelined behind one
// whose answer is not ready yet: every request memproxy forwards. README documents it; this pins it down.
describe("pipelined requests (point 8)", () => {
  const post = (path: string) => `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{"model":"m"}`;
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;

  test.each([2, 3])("%i forwarded requests in one write: the connection is closed without an answer, and memproxy serves on", async (count) => {
    await using backend = startBackend();
    using dir = tempDir("pipelined");
    const { mp, url, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    const conn = await rawConnection(port);
    conn.write(Array.from({ length: count }, (_, i) => post(`/v1/pipelined-${i}`)).join(""));
    const got = await conn.until((t) => answers(t).length === count);
    // A Bun that supports pipelining gives `count` answers here, in order.
    expect({ bytes: got.length, closed: conn.closed }).toEqual({ bytes: 0, closed: true });
    // memproxy itself is unharmed; the requests behind the first never reached the backend.
    const after = await fetch(`${url}/v1/after`, { method: "POST", body: "{}" });
    expect(after.status).toBe(200);
    expect(backend.received.map((r) => r.path).filter((p) => p !== "/v1/pipelined-0" && p !== "/v1/after")).toEqual([]);
    expect(mp.proc.exitCode).toBeNull();
  });

  test("memproxy's own endpoints that answer at once are served pipelined, in order", async () => {
    await using backend = startBackend();
    using dir = tempDir("pipelined-own");
    const { mp, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    const conn = await rawConnection(port);
    conn.write(get("/health/liveliness") + get("/health/liveness") + get("/health/liveliness"));
    const got = answers(await conn.until((t) => answers(t).length === 3));
    expect(got.map((a) => [a.status, JSON.parse(a.body)])).toEqual([0, 1, 2].map(() => [200, { status: "alive" }]));
    expect(conn.closed).toBe(false);
    conn.end();
  });
});

// Two more things Bun 1.4.5 decides before memproxy's handler. README lists them; these pin them down.
describe("what else Bun decides", () => {
  test("a chunked body with trailers gets a bare 400", async () => {
    await using backend = startBackend();
    using dir = tempDir("trailers");
    const { mp, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    const reply = await rawExchange(
      port,
      "POST /v1/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
    );
    expect(reply).toStartWith("HTTP/1.1 400");
    expect(reply).not.toContain("invalid_request_error");
  });

  test("a request with 200 headers gets Bun's bare 431 before memproxy sees it; 100 pass", async () => {
    await using backend = startBackend();
    using dir = tempDir("many-headers");
    const { mp, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n`);
    await using _mp = mp;
    const ask = (count: number) =>
      rawExchange(port, `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n${Array.from({ length: count }, (_, i) => `x-h${i}: v\r\n`).join("")}Connection: close\r\n\r\n`);
    expect(await ask(100)).toStartWith("HTTP/1.1 200");
    const refused = await ask(200);
    expect(refused).toStartWith("HTTP/1.1 431");
    expect(refused).not.toContain("request_too_large");
    expect(backend.received).toHaveLength(1);
  });
});

// Point 10, second bullet. Bun 1.4.5 writes "100 Continue" itself, before the handler runs, for `Expect:
// 100-continue` (exactly that value); Bun.serve has no setting to turn it off. README documents it.
describe("Expect: 100-continue (point 10)", () => {
  const keyed = (backend: string, extra = "") => `litellm_backend_url: ${backend}\nmemproxy:\n  listen: {port: 0}\n  access:\n    keys: ["${KEY}"]\n${extra}`;

  test("without a key: 100 Continue, then memproxy's 401 at once; the body sent after it is read and dropped, never taken for a request", async () => {
    await using backend = startBackend();
    using dir = tempDir("expect-401");
    const { mp, port } = await started(dir, keyed(backend.url));
    await using _mp = mp;
    const conn = await rawConnection(port);
    // The body looks like a request of its own: it must never be served as one.
    const smuggled = `GET /v1/smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\n\r\n`;
    conn.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${smuggled.length}\r\nExpect: 100-continue\r\n\r\n`);
    const first = await conn.until((t) => answers(t).length === 2 || (t.startsWith("HTTP/1.1 401") && answers(t).length === 1));
    expect(first).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 401 "); // Bun 1.4.5; without Bun's 100 it starts with the 401
    const refused = answers(first).at(-1)!;
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body).error.code).toBe("unauthorized");
    conn.write(smuggled);
    conn.write(`GET /health/liveliness HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    const all = answers(await conn.until((t) => answers(t).length === 3));
    expect(all.map((a) => a.status)).toEqual([100, 401, 200]);
    expect(JSON.parse(all[2]!.body)).toEqual({ status: "alive" });
    conn.end();
    expect(backend.received).toEqual([]);
  });

  test("a body over max_body_size: 100 Continue, then 413 and the connection closed; nothing forwarded", async () => {
    await using backend = startBackend();
    using dir = tempDir("expect-413");
    const { mp, port } = await started(dir, keyed(backend.url, "  limits: {max_body_size: 1KiB}\n"));
    await using _mp = mp;
    const conn = await rawConnection(port);
    conn.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 1048576\r\nExpect: 100-continue\r\n\r\n`);
    const text = await conn.until(() => false); // memproxy closes the connection after its 413
    expect(text).toStartWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 413 ");
    const refused = answers(text).at(-1)!;
    expect(refused.head.toLowerCase()).toContain("connection: close");
    expect(JSON.parse(refused.body).error.code).toBe("request_too_large");
    expect(backend.received).toEqual([]);
  });

  test("with a key: 100 Continue, the body, then the backend's answer; Expect is not forwarded", async () => {
    await using backend = startBackend();
    using dir = tempDir("expect-200");
    const { mp, port } = await started(dir, keyed(backend.url));
    await using _mp = mp;
    const conn = await rawConnection(port);
    const body = '{"model":"m"}';
    conn.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\n\r\n`);
    expect(await conn.until((t) => t.includes("\r\n\r\n"))).toBe("HTTP/1.1 100 Continue\r\n\r\n");
    conn.write(body);
    const all = answers(await conn.until((t) => answers(t).length === 2));
    expect(all.map((a) => a.status)).toEqual([100, 200]);
    conn.end();
    expect(backend.received.length).toBe(1);
    expect(new TextDecoder().decode(backend.received[0]!.body)).toBe(body);
    expect(backend.received[0]!.headers.has("expect")).toBe(false);
  });
});

// Point 10, third bullet.
describe("config files too large (point 10)", () => {
  test("a 100 MB file and /dev/zero are refused by check and at start, with one clear line", async () => {
    using dir = tempDir("huge");
    const huge = dir.file("huge.yaml");
    writeFileSync(huge, "litellm_backend_url: http://127.0.0.1:8765\n");
    const fd = openSync(huge, "r+");
    ftruncateSync(fd, 100 * 1024 * 1024); // the rest reads as zeros, without using the disk
    closeSync(fd);
    for (const file of [huge, "/dev/zero"]) {
      for (const cmd of [[bin, "check", "--config", file], [bin, "--config", file, "--port", "0"]]) {
        const r = await runToEnd(cmd);
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split("\n")).toEqual([
          `${file}: cannot read config: larger than 4 MiB, which no memproxy or LiteLLM config needs (is it the right file?)`,
          `memproxy: cannot read the config file ${file}; nothing was started.`,
        ]);
      }
    }
  });
});

// Point 9.
describe("traps in access settings (point 9)", () => {
  test("allowed_user_ids [alice] admits alice only: alice2, alice-evil and alice:bob get 403, alice/../bob 400", async () => {
    await using backend = startBackend();
    using dir = tempDir("allowed");
    const { mp, url } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  access:\n    allowed_user_ids: [alice]\n`);
    await using _mp = mp;
    const ask = async (id: string) => {
      const res = await fetch(`${url}/v1/chat/completions`, { method: "POST", body: "{}", headers: { "x-memory-user-id": id } });
      return [res.status, res.status === 200 ? "ok" : (await readJson(res)).error.code];
    };
    expect(await ask("alice2")).toEqual([403, "forbidden_user_id"]);
    expect(await ask("alice-evil")).toEqual([403, "forbidden_user_id"]);
    expect(await ask("alice:bob")).toEqual([403, "forbidden_user_id"]);
    expect(await ask("alice/../bob")).toEqual([400, "invalid_user_id"]);
    expect(backend.received).toEqual([]);
    expect(await ask("alice")).toEqual([200, "ok"]);
    expect(backend.received.map((r) => r.headers.get("x-sm-user-id"))).toEqual(["alice"]);
  });

  test("a misspelt memprxy: holding the keys: the server warns at start, check prints the warning and counts no access key", async () => {
    await using backend = startBackend();
    using dir = tempDir("near-miss");
    const text = `litellm_backend_url: ${backend.url}\nmemprxy:\n  access:\n    keys: ["${KEY}"]\n`;
    writeFileSync(dir.file("check.yaml"), text);
    const check = await runToEnd([bin, "check", "--config", dir.file("check.yaml")]);
    expect(check.code).toBe(0);
    expect(check.stdout).toContain("  access keys:      none: requests need no key\n");
    expect(check.stdout).toContain(`warning: ${dir.file("check.yaml")}: memprxy: not a setting memproxy knows, and it ignores it; did you mean memproxy?`);
    expect(check.stdout).not.toContain(KEY);

    const { mp, path } = await started(dir, text + "memproxy:\n  listen: {port: 0}\n");
    await using _mp = mp;
    const warning = JSON.parse(await mp.waitForLine("did you mean memproxy?"));
    expect(warning).toMatchObject({ level: "warn", msg: `${path}: memprxy: not a setting memproxy knows, and it ignores it; did you mean memproxy?` });
    expect(mp.lines.join("\n")).not.toContain(KEY);
  });
});

// DNS rebinding: a web page whose name is made to resolve to 127.0.0.1 makes the browser send `Host:
// evil.example:PORT`, and any page can POST to http://127.0.0.1:PORT with its Origin (src/access.ts browserGuard).
describe("web pages against a memproxy on loopback without keys", () => {
  test("a Host that is not this machine gets 421, a foreign Origin 403; loopback names, allowed_hosts and requests without a Host pass", async () => {
    await using backend = startBackend();
    using dir = tempDir("rebinding");
    const { mp, url, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  access:\n    allowed_hosts: [host.docker.internal]\n`);
    await using _mp = mp;
    const ask = (host: string, extra = "") =>
      rawExchange(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: ${host}\r\n${extra}Content-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    const refusal = (reply: string) => [Number(reply.slice(9, 12)), JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4)).error.code];
    for (const host of ["evil.example", `evil.example:${port}`, `127.0.0.1.nip.io:${port}`, "localhost.evil.example", `[::2]:${port}`, `127.0.0.1:${port}, evil.example`, "0x7f000001"]) {
      expect([host, ...refusal(await ask(host))]).toEqual([host, 421, "misdirected_request"]);
    }
    for (const origin of ["https://evil.example", "null", `http://127.0.0.1.nip.io:${port}`, "file://"]) {
      expect([origin, ...refusal(await ask(`127.0.0.1:${port}`, `Origin: ${origin}\r\n`))]).toEqual([origin, 403, "forbidden_origin"]);
    }
    // A page's no-cors GET carries no Origin; the browser says another site sent it.
    const noCors = await rawExchange(port, `GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nSec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\nConnection: close\r\n\r\n`);
    expect(refusal(noCors)).toEqual([403, "forbidden_origin"]);
    expect(noCors).toContain("Sec-Fetch-Site: cross-site");
    const page = await fetch(`${url}/ui/api/state`, { headers: { host: "evil.example" } });
    expect(page.status).toBe(421);
    expect(backend.received).toEqual([]);
    const hosts = [`127.0.0.1:${port}`, `localhost:${port}`, "LOCALHOST", `app.localhost:${port}`, `[::1]:${port}`, `127.1.2.3:${port}`, "localhost.", `host.docker.internal:${port}`];
    for (const host of hosts) expect([host, (await ask(host)).slice(0, 12)]).toEqual([host, "HTTP/1.1 200"]);
    expect((await ask(`127.0.0.1:${port}`, `Origin: http://localhost:3000\r\n`)).slice(0, 12)).toBe("HTTP/1.1 200");
    // A link to the status page followed from another site is a navigation: the page opens.
    const followed = await fetch(`${url}/`, { headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" } });
    expect(followed.status).toBe(200);
    expect(await rawExchange(port, "POST /v1/chat/completions HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}")).toStartWith("HTTP/1.1 200 ");
    expect(backend.received.length).toBe(hosts.length + 2);
  });

  test("with access keys, or listening beyond loopback, any Host is answered", async () => {
    await using backend = startBackend();
    using dir = tempDir("rebinding-keys");
    const { mp, port } = await started(dir, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {port: 0}\n  access:\n    keys: ["${KEY}"]\n`);
    await using _mp = mp;
    const reply = await rawExchange(port, `POST /v1/chat/completions HTTP/1.1\r\nHost: memproxy.internal\r\nOrigin: https://app.example\r\nAuthorization: Bearer ${KEY}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(reply).toStartWith("HTTP/1.1 200 ");
    using dir2 = tempDir("rebinding-wide");
    const wide = await started(dir2, `litellm_backend_url: ${backend.url}\nmemproxy:\n  listen: {host: 0.0.0.0, port: 0}\n`);
    await using _wide = wide.mp;
    expect(await rawExchange(wide.port, "POST /v1/chat/completions HTTP/1.1\r\nHost: 10.1.2.3:8764\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")).toStartWith("HTTP/1.1 200 ");
  });
});
