// The real AI coding tools and SDKs (installed by scripts/setup-clients.sh), each configured exactly as
// `memproxy setup <tool>` says, run non-interactively against the compiled memproxy on its embedded default
// config, in front of a fake provider: the provider must receive the tool's memory id, the tool must print the
// provider's answer, and what the tool sent must still fit its row in test/e2e/clients/CLIENTS.md.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setupText } from "../../src/setup.ts";
import { findTool, verifiedTestName } from "../../src/tools.ts";
import type { Received } from "../support/backend.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "../support/memproxy.ts";
import { killGroup, runToEnd } from "../support/process.ts";
import { clientRows, templateRegex } from "./clients/clients-table.ts";
import { isGeneration, startProviders, type FakeProviders } from "./support/providers.ts";
import { evaluateExports, setupParts } from "../support/setup-text.ts";

const ROOT = join(import.meta.dir, "..", "..");
const CUSTOM_HEADER = "x-memory-user-id"; // the embedded default config's
const PROJECT_ID = "my-project"; // the per-project id `memproxy setup` shows
const KEY = "sk-memproxy-e2e-litellm-key";
/** The longest one test of a tool may take (bun fails it then; afterEach kills what still runs). */
const TOOL_TEST_TIMEOUT_MS = 210_000;

/** The folder setup-clients.sh installs into (asked of the script itself, so that the pins live in one place). */
function clientsDir(): string {
  if (process.env.MEMPROXY_CLIENTS_DIR) return process.env.MEMPROXY_CLIENTS_DIR;
  const r = Bun.spawnSync(["bash", join(ROOT, "scripts", "setup-clients.sh"), "--dir"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`setup-clients.sh --dir failed: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}
const DIR = clientsDir();
const missing = existsSync(join(DIR, ".installed")) ? undefined : `the real clients are not installed in ${DIR}`;
// CI must run these; so must anyone who named the folder explicitly.
const mustRun = Boolean(process.env.CI || process.env.MEMPROXY_CLIENTS_DIR);
if (missing && !mustRun) {
  console.warn(
    `clients.e2e.test.ts: skipping the real-client tests: ${missing}.\n` +
      `  Install them with: bash scripts/setup-clients.sh   (about 2 minutes, 1.7 GB; needs Node.js 20, python3, a JDK and Maven)`,
  );
}

test.if(Boolean(missing) && mustRun)("the real clients are installed (required in CI and when MEMPROXY_CLIENTS_DIR is set)", () => {
  throw new Error(`${missing}. Install them with: export MEMPROXY_CLIENTS_DIR="$(bash scripts/setup-clients.sh | tail -n1)"`);
});

const BIN = join(DIR, "node", "node_modules", ".bin");
const PYTHON = join(DIR, "venv", "bin", "python");
const JAVA_CP = `${join(DIR, "java", "classes")}:${join(DIR, "java", "lib", "*")}`;
const rows = clientRows();
const temps: string[] = [];

/** Switches that keep each tool off the network (telemetry, updates, downloads), beside what setup prints. */
const QUIET: Record<string, { env?: Record<string, string>; files?: Record<string, unknown> }> = {
  "claude-code": { env: { DISABLE_AUTOUPDATER: "1", DISABLE_TELEMETRY: "1", DISABLE_ERROR_REPORTING: "1" } },
  "gemini-cli": {
    env: { GEMINI_CLI_TRUST_WORKSPACE: "true" },
    files: { "~/.gemini/settings.json": { privacy: { usageStatisticsEnabled: false }, telemetry: { enabled: false } } },
  },
  "qwen-code": { files: { "~/.qwen/settings.json": { privacy: { usageStatisticsEnabled: false }, telemetry: { enabled: false } } } },
  opencode: {
    env: Object.fromEntries(
      ["AUTOUPDATE", "MODELS_FETCH", "DEFAULT_PLUGINS", "LSP_DOWNLOAD", "SHARE"].map((s) => [`OPENCODE_DISABLE_${s}`, "true"]),
    ),
  },
};

describe.if(!missing)("real clients through the compiled memproxy", () => {
  let provider: FakeProviders;
  let memproxy: MemproxyProcess;
  let binary: string;
  let baseUrl: string;
  let setupFromBinary = false;

  beforeAll(async () => {
    provider = startProviders();
    binary = await compiledBinary();
    memproxy = spawnMemproxy([binary, "--port", "0", "--backend", provider.url]);
    baseUrl = await memproxy.listening();
    // `memproxy setup` when the binary has it; until then the same text from the library, for the same address.
    const help = Bun.spawnSync([binary, "--help"], { stdout: "pipe" }).stdout.toString();
    setupFromBinary = /memproxy setup\b/.test(help);
  }, 120_000);

  // A tool still running when its test ended (it timed out) is killed with all it started.
  const running = new Set<number>();
  afterEach(() => {
    for (const group of running) killGroup(group, "SIGKILL");
    running.clear();
  });

  afterAll(async () => {
    await memproxy?.[Symbol.asyncDispose]();
    await provider?.stop();
    for (const t of temps) rmSync(t, { recursive: true, force: true });
  });

  /** What `memproxy setup <key>` prints for this memproxy. */
  async function setupFor(key: string): Promise<string> {
    if (!setupFromBinary) return setupText(key, { baseUrl, customHeader: CUSTOM_HEADER })!;
    const port = new URL(baseUrl).port;
    const { stdout, stderr, code } = await runToEnd([binary, "setup", key, "--host", "127.0.0.1", "--port", port]);
    if (code !== 0) throw new Error(`memproxy setup ${key} exited ${code}: ${stderr}`);
    return stdout;
  }

  /** A fresh HOME and project folder with a tool configured from the setup text (and the per-project part when asked). */
  async function configure(key: string, perProject: boolean) {
    const home = mkdtempSync(join(tmpdir(), `memproxy-client-${key}-`));
    temps.push(home);
    const project = join(home, "project");
    mkdirSync(project);
    const text = await setupFor(key);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      LANG: "C.UTF-8",
      LITELLM_API_KEY: KEY,
      NO_PROXY: "127.0.0.1,localhost",
      no_proxy: "127.0.0.1,localhost",
      ...QUIET[key]?.env,
    };
    const write = (path: string, content: string) => {
      const file = path.startsWith("~/") ? join(home, path.slice(2)) : join(project, path);
      mkdirSync(dirname(file), { recursive: true });
      if (file.endsWith(".json") && existsSync(file)) content = JSON.stringify(merge(JSON.parse(readFileSync(file, "utf8")), JSON.parse(content)), null, 2);
      writeFileSync(file, content + "\n");
    };
    for (const [path, value] of Object.entries(QUIET[key]?.files ?? {})) write(path, JSON.stringify(value));
    for (const part of perProject ? (["base", "project"] as const) : (["base"] as const)) {
      const { exports, files } = setupParts(text, part);
      Object.assign(env, await evaluateExports(exports, env));
      for (const f of files) write(f.path, f.content);
    }
    if (perProject) expect(text).toContain(PROJECT_ID);
    return { home, project, env, text };
  }

  /** Runs one command of a tool and checks both sides: what the provider got, what the tool printed. */
  async function runAndCheck(key: string, run: { cmd: string[]; cwd: string; env: Record<string, string> }, expectedId: string) {
    const before = provider.received.length;
    const { stdout, stderr, code } = await runToEnd(run.cmd, { cwd: run.cwd, env: run.env, group: true, started: (pid) => running.add(pid) });
    // memproxy's own checks of its backend are not the tool's.
    const got = provider.received.slice(before).filter((r) => !r.path.startsWith("/health/"));
    const context = `${run.cmd.map((c) => c.split("/").at(-1)).join(" ")} exited ${code}\n--- stdout\n${tail(stdout)}\n--- stderr\n${tail(stderr)}\n--- requests\n${got.map(summary).join("\n")}`;
    const generations = got.filter(isGeneration);
    // (a) the memory id the provider received, as one header value, on every model call.
    expect({ context, calls: generations.length > 0 }).toEqual({ context, calls: true });
    for (const g of generations) expect({ context, path: g.path, "x-sm-user-id": g.headers.get("x-sm-user-id") }).toEqual({ context, path: g.path, "x-sm-user-id": expectedId });
    // (b) the tool printed the provider's answer.
    expect({ context, printed: stdout.includes(`${provider.marker} memory=${expectedId}`) }).toEqual({ context, printed: true });
    // (c) what it sent still fits a captured CLIENTS.md row of this tool.
    const templates = rows.filter((r) => r.key === key && r.captured && r.userAgent).map((r) => templateRegex(r.userAgent!));
    expect(templates.length).toBeGreaterThan(0);
    for (const r of got) {
      const ua = r.headers.get("user-agent") ?? "(none)";
      expect({ context, ua, fitsClientsMd: templates.some((t) => t.test(ua)) }).toEqual({ context, ua, fitsClientsMd: true });
    }
    expect({ context, code }).toEqual({ context, code: 0 });
    return { stdout, got };
  }

  const prompt = () => `Say hello. (nonce ${crypto.randomUUID()})`;

  /** The command line each CLI runs with, non-interactively. */
  const CLI: Record<string, (p: string) => string[]> = {
    "claude-code": (p) => [join(BIN, "claude"), "-p", p],
    codex: (p) => [join(BIN, "codex"), "exec", "--skip-git-repo-check", p],
    "gemini-cli": (p) => [join(BIN, "gemini"), "-p", p],
    "qwen-code": (p) => [join(BIN, "qwen"), "-p", p],
    opencode: (p) => [join(BIN, "opencode"), "run", p],
  };

  for (const key of Object.keys(CLI)) {
    const tool = findTool(key)!;
    test(verifiedTestName(key), async () => {
      const { project, env } = await configure(key, false);
      await runAndCheck(key, { cmd: CLI[key]!(prompt()), cwd: project, env }, tool.userId);
    }, TOOL_TEST_TIMEOUT_MS);

    test(`${verifiedTestName(key)}, per-project memory`, async () => {
      const { project, env } = await configure(key, true);
      await runAndCheck(key, { cmd: CLI[key]!(prompt()), cwd: project, env }, PROJECT_ID);
    }, TOOL_TEST_TIMEOUT_MS);
  }

  test(verifiedTestName("jetbrains"), async () => {
    const { project, env } = await configure("jetbrains", false);
    const seen = new Set<string>();
    for (const mode of ["sync", "async", "sync-stream"]) {
      const { got } = await runAndCheck("jetbrains", { cmd: ["java", "-cp", JAVA_CP, "MemproxyProbe", mode, prompt()], cwd: project, env }, "pycharm-ai");
      for (const r of got) seen.add(r.headers.get("user-agent")!.split(" ")[0]!);
    }
    expect([...seen].sort()).toEqual(["OpenAIClientAsyncImpl/Java", "OpenAIClientImpl/Java"]);
  }, 3 * 60_000);

  const PY_OPENAI = `
import asyncio, openai
c = openai.OpenAI()
print(c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)
print(c.responses.create(model="gpt-4o", input="hi").output_text)
print("".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True) if ch.choices))
async def main():
    r = await openai.AsyncOpenAI().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    print(r.choices[0].message.content)
asyncio.run(main())
`;
  const PY_ANTHROPIC = `
import asyncio, anthropic
c = anthropic.Anthropic()
print(c.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]).content[0].text)
with c.messages.stream(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as s:
    print(s.get_final_text())
async def main():
    m = await anthropic.AsyncAnthropic().messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    print(m.content[0].text)
asyncio.run(main())
`;
  const JS_OPENAI = `
import OpenAI from "openai";
const c = new OpenAI();
console.log((await c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] })).choices[0].message.content);
let text = "";
for await (const ch of await c.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }], stream: true })) text += ch.choices[0]?.delta?.content ?? "";
console.log(text);
console.log((await c.responses.create({ model: "gpt-4o", input: "hi" })).output_text);
`;
  const JS_ANTHROPIC = `
import Anthropic from "@anthropic-ai/sdk";
const c = new Anthropic();
console.log((await c.messages.create({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "hi" }] })).content[0].text);
const s = c.messages.stream({ model: "claude-sonnet-4-5", max_tokens: 64, messages: [{ role: "user", content: "hi" }] });
console.log(await s.finalText());
`;
  const SDK: Record<string, (env: Record<string, string>) => { cmd: string[]; cwd: string }> = {
    "openai-python": () => ({ cmd: [PYTHON, "-c", PY_OPENAI], cwd: DIR }),
    "anthropic-python": () => ({ cmd: [PYTHON, "-W", "ignore", "-c", PY_ANTHROPIC], cwd: DIR }),
    // Bare imports resolve from the working directory: the clients' node_modules.
    "openai-js": () => ({ cmd: ["node", "--input-type=module", "-e", JS_OPENAI], cwd: join(DIR, "node") }),
    "anthropic-js": () => ({ cmd: ["node", "--input-type=module", "--no-warnings", "-e", JS_ANTHROPIC], cwd: join(DIR, "node") }),
  };
  for (const key of Object.keys(SDK)) {
    test(verifiedTestName(key), async () => {
      const { env } = await configure(key, false);
      const { stdout } = await runAndCheck(key, { ...SDK[key]!(env), env }, findTool(key)!.userId);
      // Every call printed the answer (JSON, streamed, Responses, async).
      expect(stdout.split(`${provider.marker} memory=`).length - 1).toBeGreaterThanOrEqual(key.endsWith("python") ? 3 : 2);
    }, 120_000);
  }

  test("an unknown tool with its own product token gets an id derived from it", async () => {
    const before = provider.received.length;
    const res = await fetch(`${baseUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "user-agent": "MadeUpTool/1.2 (x)", "content-type": "application/json", authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }),
    });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe(`${provider.marker} memory=madeuptool`);
    const got = provider.received.slice(before).filter(isGeneration);
    expect(got.map((r) => r.headers.get("x-sm-user-id"))).toEqual(["madeuptool"]);
  });

  test("curl, a generic HTTP client, gets the default id", async () => {
    const before = provider.received.length;
    const curl = Bun.which("curl");
    const data = JSON.stringify({ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] });
    let answer: string;
    if (curl) {
      const r = await runToEnd([curl, "-sS", `${baseUrl}/v1/chat/completions`, "-H", `Authorization: Bearer ${KEY}`, "-H", "Content-Type: application/json", "-d", data]);
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: "" });
      answer = r.stdout;
    } else {
      const res = await fetch(`${baseUrl}/v1/chat/completions`, { method: "POST", headers: { "user-agent": "curl/8.5.0", "content-type": "application/json" }, body: data });
      answer = await res.text();
    }
    expect(answer).toContain(`${provider.marker} memory=default-dev`);
    const got = provider.received.slice(before).filter(isGeneration);
    expect(got.map((r) => [r.headers.get("user-agent")?.split("/")[0], r.headers.get("x-sm-user-id")])).toEqual([["curl", "default-dev"]]);
  });
});



/** Deep merge of JSON objects (b wins). */
function merge(a: any, b: any): any {
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null || Array.isArray(a) || Array.isArray(b)) return b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? merge(a[k], v) : v;
  return out;
}

function summary(r: Received): string {
  return `${r.method} ${r.path} ua=${JSON.stringify(r.headers.get("user-agent"))} x-sm-user-id=${JSON.stringify(r.headers.get("x-sm-user-id"))}`;
}

function tail(text: string, lines = 30): string {
  return text.split("\n").slice(-lines).join("\n");
}
