// End to end with the real LiteLLM: the compiled memproxy starts and supervises it on one shared config file,
// and a fake OpenAI/Anthropic provider behind LiteLLM records what arrives (above all x-sm-user-id); further
// down, the whole memory chain through a fake Supermemory Memory Router, with config.example.yaml as written.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { DEFAULT_CONFIG_TEXT, parseConfig } from "../../src/config.ts";
import { runDoctor } from "../../src/doctor.ts";
import { analyzeChain, parseLitellmYaml } from "../../src/litellm-config.ts";
import { memoryOutcome } from "../../src/memory.ts";
import { startFakeProvider, type FakeProvider } from "../support/fake-provider.ts";
import { startFakeSupermemory, type FakeSupermemory } from "../support/fake-supermemory.ts";
import { parsePrometheus, sampleValue } from "../support/prometheus.ts";
import { compiledBinary, spawnMemproxy, type MemproxyProcess } from "../support/memproxy.ts";
import { freePort, killGroup, processGroup, runToEnd, survivors, type Finished } from "../support/process.ts";
import { headerMap } from "../../src/http.ts";

const ROOT = join(import.meta.dir, "..", "..");
const dir = mkdtempSync(join(tmpdir(), "memproxy-litellm-e2e-"));

// The version scripts/setup-litellm.sh pins, so that the default install location follows the script.
const PINNED = /LITELLM_VERSION="\$\{LITELLM_VERSION:-([^}]+)\}"/.exec(readFileSync(join(ROOT, "scripts", "setup-litellm.sh"), "utf8"))![1]!;
const LITELLM = process.env.MEMPROXY_LITELLM_BIN || join(process.env.MEMPROXY_CACHE_DIR || join(homedir(), ".cache", "memproxy"), `litellm-${process.env.LITELLM_VERSION || PINNED}`, "venv", "bin", "litellm");
const missing = existsSync(LITELLM) ? undefined : `no LiteLLM executable at ${LITELLM}`;
// CI must run these; so must anyone who named an executable explicitly.
const mustRun = Boolean(process.env.CI || process.env.MEMPROXY_LITELLM_BIN);
if (missing && !mustRun) {
  console.warn(
    `litellm.e2e.test.ts: skipping the tests against the real LiteLLM: ${missing}.\n` +
      `  Install it with: bash scripts/setup-litellm.sh   (or set MEMPROXY_LITELLM_BIN to a litellm executable)`,
  );
}

test.if(Boolean(missing) && mustRun)("LiteLLM is installed (required in CI and when MEMPROXY_LITELLM_BIN is set)", () => {
  throw new Error(`${missing}. Install it with: export MEMPROXY_LITELLM_BIN="$(bash scripts/setup-litellm.sh | tail -n1)"`);
});

// LiteLLM 1.108 refuses to start without a master key, and refuses weak ones such as sk-1234.
const MASTER_KEY = "sk-memproxy-test-master-key-1234";
const ENV = {
  LITELLM_MASTER_KEY: MASTER_KEY,
  FAKE_OPENAI_KEY: "sk-fake-openai-provider-key",
  FAKE_ANTHROPIC_KEY: "sk-fake-anthropic-provider-key",
  SUPERMEMORY_API_KEY: "sm-fake-supermemory-key",
  NO_PROXY: "127.0.0.1,localhost",
  no_proxy: "127.0.0.1,localhost",
};
const DEFAULT_MAPPINGS = parse(DEFAULT_CONFIG_TEXT).user_id_mappings;
const OPENAI_ROUTE = "/v3/https://api.openai.com/v1";
const ANTHROPIC_ROUTE = "/v3/https://api.anthropic.com";

/** The one file both programs read: LiteLLM's model_list and general_settings, memproxy's sections. */
function sharedConfig(provider: FakeProvider, litellm: Record<string, unknown> = {}): string {
  const model = (name: string, provider_model: string, api_base: string, key: string) => ({
    model_name: name,
    litellm_params: {
      model: provider_model,
      api_base,
      api_key: `os.environ/${key}`,
      // What the README tells users for Supermemory's key: an extra header taken from the environment.
      extra_headers: { "x-supermemory-api-key": "os.environ/SUPERMEMORY_API_KEY" },
    },
  });
  const config = {
    // Supermemory's router form, https://api.supermemory.ai/v3/<provider URL>, with the fake provider as the host:
    // LiteLLM must keep the embedded URL intact. "claude-*" takes any Claude model name, as Claude Code sends several.
    model_list: [
      model("gpt-4o", "openai/gpt-4o", `${provider.url}${OPENAI_ROUTE}`, "FAKE_OPENAI_KEY"),
      model("claude-*", "anthropic/claude-*", `${provider.url}${ANTHROPIC_ROUTE}`, "FAKE_ANTHROPIC_KEY"),
    ],
    general_settings: {
      master_key: "os.environ/LITELLM_MASTER_KEY",
      forward_client_headers_to_llm_api: true,
      // Otherwise LiteLLM asks every api_base for /v1/models at start and every 300 s.
      disable_model_info_refresh: true,
    },
    user_id_mappings: DEFAULT_MAPPINGS,
    memproxy: {
      listen: { port: 0 },
      litellm: { ready_timeout: "120s", env: { LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS: "True" }, ...litellm },
    },
  };
  const path = join(dir, `shared-${crypto.randomUUID()}.yaml`);
  writeFileSync(path, stringify(config));
  return path;
}

/** Process groups of LiteLLM children seen by the tests: killed at the end whatever happened. */
const seenGroups = new Set<number>();
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  for (const pgid of seenGroups) killGroup(pgid, "SIGKILL");
});

async function spawnStack(bin: string, config: string): Promise<{ mp: MemproxyProcess; url: string }> {
  const mp = spawnMemproxy([bin, "--config", config, "--spawn-litellm", "--litellm-command", LITELLM, "--litellm-port", String(freePort())], {
    env: ENV,
    cwd: dir,
  });
  return { mp, url: await mp.listening() };
}

async function health(url: string): Promise<any> {
  const body: any = await (await fetch(url + "/health")).json();
  if (body.litellm?.pid) seenGroups.add(body.litellm.pid);
  return body;
}

/** Stops memproxy with SIGTERM and waits for it (which stops LiteLLM); a no-op once it exited. */
async function stopStack(mp: MemproxyProcess | undefined): Promise<void> {
  if (!mp) return;
  if (mp.proc.exitCode === null && mp.proc.signalCode === null) mp.proc.kill("SIGTERM");
  await mp.exited;
}

/** memproxy's log line each time LiteLLM (re)starts and answers its readiness check. */
const READY_LINE = "LiteLLM is ready";

type Api = "openai" | "anthropic";
interface Client {
  name: string;
  api: Api;
  headers: Record<string, string>;
  /** The memory memproxy must choose, i.e. the x-sm-user-id the provider must see. */
  user: string;
}
const openaiAuth = { authorization: `Bearer ${MASTER_KEY}` };
const claudeCode = { "user-agent": "claude-cli/2.1.197 (external, sdk-cli)", "x-api-key": MASTER_KEY, "anthropic-version": "2023-06-01" };
const CLIENTS: Client[] = [
  { name: "openai-java (PyCharm AI)", api: "openai", headers: { "user-agent": "OpenAIClientImpl/Java 2.1.0", ...openaiAuth }, user: "pycharm-ai" },
  { name: "Claude Code", api: "anthropic", headers: claudeCode, user: "claude-cli" },
  { name: "Claude Code with an explicit x-memory-user-id", api: "anthropic", headers: { ...claudeCode, "x-memory-user-id": "project-42" }, user: "project-42" },
  {
    name: "a client that sends its own x-sm-user-id",
    api: "openai",
    headers: { "user-agent": "OpenAI/Python 1.99.0", ...openaiAuth, "x-sm-user-id": "someone-else" },
    user: "openai-python",
  },
];

/** Sends one chat request the way the client's API does; `said` marks it so the provider's record can be found. */
function chat(url: string, client: Client, said: string, stream: boolean): Promise<Response> {
  const openai = client.api === "openai";
  const body = openai
    ? { model: "gpt-4o", stream, messages: [{ role: "user", content: said }] }
    : { model: "claude-sonnet-4-5-20250929", stream, max_tokens: 64, messages: [{ role: "user", content: said }] };
  return fetch(url + (openai ? "/v1/chat/completions" : "/v1/messages?beta=true"), {
    method: "POST",
    headers: { "content-type": "application/json", ...client.headers },
    body: JSON.stringify(body),
  });
}

/** The assistant's text from a response of either API, streamed or not. */
async function replyOf(res: Response, api: Api, stream: boolean): Promise<string> {
  if (!stream) {
    const body: any = await res.json();
    return api === "openai" ? body.choices[0].message.content : body.content.map((c: any) => c.text).join("");
  }
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const events = sseData(await res.text());
  return api === "openai"
    ? events.map((e) => e.choices?.[0]?.delta?.content ?? "").join("")
    : events.filter((e) => e.type === "content_block_delta").map((e) => e.delta.text).join("");
}

/** The JSON payloads of an SSE body (events split on blank lines, never per chunk). */
function sseData(text: string): any[] {
  return text
    .split(/\r?\n\r?\n/)
    .flatMap((event) => event.split(/\r?\n/).filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()))
    .filter((d) => d && d !== "[DONE]")
    .map((d) => JSON.parse(d));
}

describe.skipIf(Boolean(missing))("memproxy --spawn-litellm with the real LiteLLM", () => {
  let bin: string;
  let provider: FakeProvider;
  let config: string;
  let mp: MemproxyProcess | undefined;
  let url: string;

  beforeAll(async () => {
    bin = await compiledBinary();
    provider = startFakeProvider();
    config = sharedConfig(provider);
    ({ mp, url } = await spawnStack(bin, config));
  });
  afterAll(async () => {
    await stopStack(mp);
    await provider?.stop();
  });

  test("while LiteLLM starts: 503 with Retry-After and /health 'starting'; then 'healthy' once it is ready", async () => {
    // LiteLLM needs seconds to start: the first request right after "listening" comes before it is ready.
    const said = `early ${crypto.randomUUID()}`;
    const early = await chat(url, CLIENTS[0]!, said, false);
    expect(early.status).toBe(503);
    expect(Number(early.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await early.json()) as any).error.code).toBe("backend_starting");
    const starting = await health(url);
    expect(starting.status).toBe("starting");
    expect(starting.litellm.state).toBe("starting");

    await mp!.waitForLine(READY_LINE);
    const ready = await health(url);
    expect(ready).toMatchObject({ status: "healthy", litellm_backend: "up", litellm: { state: "ready", restarts: 0 } });
    expect(provider.received.some((r) => new TextDecoder().decode(r.body).includes(said))).toBe(false);
  });

  for (const client of CLIENTS) {
    for (const stream of [false, true]) {
      test(`${client.name}, ${stream ? "streamed" : "not streamed"}: reaches the provider with x-sm-user-id ${client.user}`, async () => {
        await mp!.waitForLine(READY_LINE);
        const said = `hello ${crypto.randomUUID()}`;
        const res = await chat(url, client, said, stream);
        expect(res.status).toBe(200);
        const reply = await replyOf(res, client.api, stream);

        const arrived = await provider.requestWith(said);
        expect(arrived.path).toBe(client.api === "openai" ? `${OPENAI_ROUTE}/chat/completions` : `${ANTHROPIC_ROUTE}/v1/messages`);
        expect(arrived.headers.get("x-sm-user-id")).toBe(client.user);
        const sent = JSON.parse(new TextDecoder().decode(arrived.body));
        expect(sent.model).toBe(client.api === "openai" ? "gpt-4o" : "claude-sonnet-4-5-20250929");
        expect(sent.stream ?? false).toBe(stream);
        // LiteLLM's own settings reach the provider too: its provider key, and Supermemory's key from extra_headers.
        const providerKey = client.api === "openai" ? `Bearer ${ENV.FAKE_OPENAI_KEY}` : ENV.FAKE_ANTHROPIC_KEY;
        expect(arrived.headers.get(client.api === "openai" ? "authorization" : "x-api-key")).toBe(providerKey);
        expect(arrived.headers.get("x-supermemory-api-key")).toBe(ENV.SUPERMEMORY_API_KEY);
        // The provider's reply names the user it saw: the client got this provider's answer to this request.
        expect(reply).toBe(`fake reply for ${client.user}: ${said}`);
      });
    }
  }

  test("the one shared config file is accepted by both programs", async () => {
    const { stdout, stderr, code } = await runToEnd([bin, "check", "--config", config], { env: { ...process.env, ...ENV } });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(`${config}: OK`);
    // LiteLLM was started on that same file, and serves its model_list.
    expect(await mp!.waitForLine("starting LiteLLM")).toContain(`--config ${config} --host 127.0.0.1 --port`);
    await mp!.waitForLine(READY_LINE);
    const res = await fetch(url + "/v1/models", { headers: openaiAuth });
    expect(res.status).toBe(200);
    // A wildcard route such as claude-* is not listed.
    expect(((await res.json()) as any).data.map((m: any) => m.id)).toEqual(["gpt-4o"]);
  });

  test("config.example.yaml passes memproxy check (when the repo has it)", async () => {
    const example = join(ROOT, "config.example.yaml");
    if (!existsSync(example)) return console.warn("litellm.e2e.test.ts: no config.example.yaml at the repo root yet; not checked");
    const { stdout, stderr, code } = await runToEnd([bin, "check", "--config", example]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toContain(": OK");
  });

  test("a killed LiteLLM is restarted, and traffic flows again", async () => {
    await mp!.waitForLine(READY_LINE);
    const before = await health(url);
    const pid: number = before.litellm.pid;
    const from = mp!.lines.length;
    process.kill(pid, "SIGKILL");
    expect(await mp!.waitForLine("LiteLLM exited unexpectedly", from)).toContain("killed by SIGKILL");
    // The restart waits its backoff and then LiteLLM's seconds of start-up: meanwhile clients are told to retry.
    const during = await chat(url, CLIENTS[0]!, `during restart ${crypto.randomUUID()}`, false);
    expect(during.status).toBe(503);
    expect(during.headers.get("retry-after")).not.toBeNull();
    expect(((await during.json()) as any).error.code).toBe("backend_starting");
    expect(await health(url)).toMatchObject({ status: "degraded", litellm: { state: "restarting" } });
    await mp!.waitForLine(READY_LINE, from);

    const after = await health(url);
    expect(after.status).toBe("healthy");
    expect(after.litellm.state).toBe("ready");
    expect(after.litellm.restarts).toBe(before.litellm.restarts + 1);
    expect(after.litellm.pid).not.toBe(pid);
    const said = `after restart ${crypto.randomUUID()}`;
    const res = await chat(url, CLIENTS[1]!, said, true);
    expect(res.status).toBe(200);
    expect(await replyOf(res, "anthropic", true)).toBe(`fake reply for claude-cli: ${said}`);
    expect((await provider.requestWith(said)).headers.get("x-sm-user-id")).toBe("claude-cli");
  });

  test("SIGTERM stops memproxy and LiteLLM, exit 0", async () => {
    await mp!.waitForLine(READY_LINE);
    const pid: number = (await health(url)).litellm.pid;
    mp!.proc.kill("SIGTERM");
    expect(await mp!.exited).toBe(0);
    expect(await survivors([pid], 0)).toEqual([]);
  });
});

describe.skipIf(Boolean(missing))("memproxy --spawn-litellm with the real LiteLLM running 2 workers", () => {
  let bin: string;
  let provider: FakeProvider;
  let mp: MemproxyProcess | undefined;
  beforeAll(async () => {
    bin = await compiledBinary();
    provider = startFakeProvider();
  });
  afterAll(async () => {
    await stopStack(mp);
    await provider?.stop();
  });

  test("SIGTERM to memproxy leaves no LiteLLM process behind, workers included", async () => {
    let url: string;
    ({ mp, url } = await spawnStack(bin, sharedConfig(provider, { args: ["--num_workers", "2"] })));
    await mp.waitForLine(READY_LINE);
    const pgid: number = (await health(url)).litellm.pid;
    const group = processGroup(pgid);
    // The parent, multiprocessing's resource tracker and the two uvicorn workers.
    expect(group.length).toBeGreaterThanOrEqual(4);
    const said = `workers ${crypto.randomUUID()}`;
    expect((await chat(url, CLIENTS[0]!, said, false)).status).toBe(200);

    mp.proc.kill("SIGTERM");
    expect(await mp.exited).toBe(0);
    expect(await survivors(group)).toEqual([]);
  });

  // Once a bug: the supervisor restarted LiteLLM without killing the dead child's process group, and with 2
  // workers the orphaned workers kept the port: the new child died with "[Errno 98] Address already in use"
  // while the orphans answered the readiness check, until the supervisor gave up.
  test("a killed LiteLLM with 2 workers is restarted in place of its orphaned workers", async () => {
    const stack = await spawnStack(bin, sharedConfig(provider, { args: ["--num_workers", "2"] }));
    try {
      await stack.mp.waitForLine(READY_LINE);
      const before = await health(stack.url);
      const oldGroup = processGroup(before.litellm.pid);
      const from = stack.mp.lines.length;
      process.kill(before.litellm.pid, "SIGKILL");
      await stack.mp.waitForLine(READY_LINE, from);
      expect(await survivors(oldGroup)).toEqual([]);
      const after = await health(stack.url);
      expect(after.litellm).toMatchObject({ state: "ready", restarts: 1 });
      const newGroup = processGroup(after.litellm.pid);
      expect(newGroup.length).toBeGreaterThanOrEqual(4);
      const said = `workers again ${crypto.randomUUID()}`;
      expect((await chat(stack.url, CLIENTS[0]!, said, false)).status).toBe(200);
      stack.mp.proc.kill("SIGTERM");
      expect(await stack.mp.exited).toBe(0);
      expect(await survivors(newGroup)).toEqual([]);
    } finally {
      await stopStack(stack.mp);
    }
  });
});

describe.skipIf(Boolean(missing) || process.platform !== "linux" || !Bun.which("setpriv"))("memproxy killed with SIGKILL, real LiteLLM with 2 workers", () => {
  // Nothing of memproxy runs to stop LiteLLM then; a LiteLLM or worker left behind would keep the port,
  // and every later start of memproxy would fail with "port in use".
  test("LiteLLM is told to stop by the kernel and stops its workers: nothing stays behind", async () => {
    const bin = await compiledBinary();
    const provider = startFakeProvider();
    const { mp, url } = await spawnStack(bin, sharedConfig(provider, { args: ["--num_workers", "2"] }));
    try {
      await mp.waitForLine(READY_LINE);
      const group = processGroup((await health(url)).litellm.pid);
      expect(group.length).toBeGreaterThanOrEqual(4);
      mp.proc.kill("SIGKILL");
      await mp.exited;
      expect(await survivors(group, 30_000)).toEqual([]);
    } finally {
      await stopStack(mp);
      await provider.stop();
    }
  });
});

describe("memproxy --spawn-litellm start-up errors (no LiteLLM needed)", () => {
  let bin: string;
  beforeAll(async () => {
    bin = await compiledBinary();
  });
  const config = () => {
    const path = join(dir, `minimal-${crypto.randomUUID()}.yaml`);
    writeFileSync(path, "model_list: []\nmemproxy:\n  listen: {port: 0}\n");
    return path;
  };
  const run = (args: string[]) => runToEnd([bin, ...args], { cwd: dir });

  test("a missing litellm executable: a clear error, exit 1, no hang", async () => {
    const r = await run(["--config", config(), "--spawn-litellm", "--litellm-command", "/nonexistent/litellm", "--litellm-port", String(freePort())]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("'/nonexistent/litellm' was not found");
    expect(r.stderr).toContain("--litellm-command");
  });

  test("LiteLLM's port already in use: a clear error, exit 1, nothing started", async () => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await run(["--config", config(), "--spawn-litellm", "--litellm-command", "/nonexistent/litellm", "--litellm-port", String(busy.port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot start LiteLLM on 127.0.0.1:${busy.port}: the port is already in use`);
      expect(r.stderr).toContain("--litellm-port");
      expect(r.stdout).not.toContain("listening on");
    } finally {
      busy.stop(true);
    }
  });
});

// ------------------------------------------------------------------------------------------------ the memory chain
// The chain as config.example.yaml writes it: memproxy -> LiteLLM -> Supermemory's Memory Router -> provider, with
// a fake router written for the tests (test/support/fake-supermemory.ts) in place of api.supermemory.ai. One
// LiteLLM per variant of the forwarding setting, shared by the tests of that variant.
//
// Tests marked [wiring] go through memproxy's request path and CLI (memory counters, the "memory is off" warning,
// /health's memory_id_forwarding, start-up warnings, `memproxy doctor`, memproxy.forward.conversation_headers).

const EXAMPLE_TEXT = readFileSync(join(ROOT, "config.example.yaml"), "utf8");
const CHAIN_ENV = {
  LITELLM_MASTER_KEY: MASTER_KEY,
  OPENAI_API_KEY: "sk-fake-openai-provider-key",
  ANTHROPIC_API_KEY: "sk-fake-anthropic-provider-key",
  SUPERMEMORY_API_KEY: "sm-fake-supermemory-key",
  NO_PROXY: "127.0.0.1,localhost",
  no_proxy: "127.0.0.1,localhost",
};

type Forwarding = "global" | "model-groups" | "none";

/**
 * config.example.yaml as written, with only what a test must change: Supermemory's host replaced by the fake
 * router's, fixed-for-this-run ports (so that `memproxy doctor` finds memproxy and LiteLLM from the file), the
 * pinned LiteLLM as memproxy.litellm.command, Claude Code's session header mapped to a conversation, and the
 * forwarding setting in the form under test.
 */
function exampleConfig(sm: FakeSupermemory, forwarding: Forwarding): { path: string; doc: Record<string, unknown>; port: number; litellmPort: number } {
  const text = EXAMPLE_TEXT.replaceAll("https://api.supermemory.ai/", `${sm.url}/`);
  const doc = parse(text);
  if (forwarding !== "global") delete doc.general_settings.forward_client_headers_to_llm_api;
  if (forwarding === "model-groups") doc.litellm_settings = { model_group_settings: { forward_client_headers_to_llm_api: ["gpt-4o", "claude-*"] } };
  const port = freePort();
  const litellmPort = freePort();
  doc.memproxy.listen.port = port;
  doc.memproxy.litellm = { ...doc.memproxy.litellm, spawn: true, command: LITELLM, port: litellmPort, ready_timeout: "120s" };
  doc.memproxy.forward.conversation_headers = ["x-claude-code-session-id"];
  const path = join(dir, `example-${forwarding}-${crypto.randomUUID()}.yaml`);
  writeFileSync(path, stringify(doc));
  return { path, doc: parseLitellmYaml(readFileSync(path, "utf8")), port, litellmPort };
}

/** The fake provider and router, the compiled memproxy running the stack on the example config. */
interface Chain {
  provider: FakeProvider;
  sm: FakeSupermemory;
  config: ReturnType<typeof exampleConfig>;
  mp: MemproxyProcess;
  url: string;
  bin: string;
}

async function startChain(forwarding: Forwarding): Promise<Chain> {
  const bin = await compiledBinary();
  const provider = startFakeProvider();
  const sm = startFakeSupermemory({
    apiKey: CHAIN_ENV.SUPERMEMORY_API_KEY,
    upstreams: { "https://api.openai.com": provider.url, "https://api.anthropic.com": provider.url },
  });
  const config = exampleConfig(sm, forwarding);
  const mp = spawnMemproxy([bin, "--config", config.path], { env: CHAIN_ENV, cwd: dir });
  const url = await mp.listening();
  await mp.waitForLine(READY_LINE);
  await health(url);
  return { provider, sm, config, mp, url, bin };
}

async function stopChain(c: Chain | undefined): Promise<void> {
  if (!c) return;
  await stopStack(c.mp);
  await c.provider.stop();
  await c.sm.stop();
}

type Route = "/v1/chat/completions" | "/v1/messages" | "/v1/responses";
/** A request as a real client makes it: Claude Code on /v1/messages, Codex on /v1/responses, an OpenAI SDK on chat. */
interface Ask {
  route: Route;
  model: string;
  /** The memory memproxy chooses for this client with the example config. */
  user: string;
  headers: Record<string, string>;
}
const CODEX = { "user-agent": "codex_exec/0.171.0 (Debian 12.0.0; x86_64) xterm (codex_exec; 0.171.0)", originator: "codex_exec", ...openaiAuth };
const OPENAI_PY = { "user-agent": "OpenAI/Python 1.99.0", ...openaiAuth };
const ASKS: Ask[] = [
  { route: "/v1/chat/completions", model: "gpt-4o", user: "openai-python", headers: OPENAI_PY },
  { route: "/v1/chat/completions", model: "claude-sonnet-4-5-20250929", user: "openai-python", headers: OPENAI_PY },
  { route: "/v1/messages", model: "claude-sonnet-4-5-20250929", user: "claude-cli", headers: claudeCode },
  { route: "/v1/responses", model: "gpt-4o", user: "codex", headers: CODEX },
];

/** Sends one request in the route's API; `said` marks it for the router's and provider's records. */
function ask(url: string, a: Ask, said: string, stream: boolean, extra: Record<string, string> = {}, query = ""): Promise<Response> {
  const body =
    a.route === "/v1/responses"
      ? { model: a.model, stream, input: [{ role: "user", content: [{ type: "input_text", text: said }] }] }
      : { model: a.model, stream, max_tokens: 64, messages: [{ role: "user", content: said }] };
  return fetch(url + a.route + (a.route === "/v1/messages" ? "?beta=true" : "") + query, {
    method: "POST",
    headers: { "content-type": "application/json", ...a.headers, ...extra },
    body: JSON.stringify(body),
  });
}

/** The assistant's text from an answer of the route's API, streamed or not. */
async function answerText(res: Response, route: Route, stream: boolean): Promise<string> {
  if (!stream) {
    const body: any = await res.json();
    if (route === "/v1/chat/completions") return body.choices[0].message.content;
    if (route === "/v1/messages") return body.content.map((c: any) => c.text).join("");
    return body.output.flatMap((o: any) => o.content ?? []).map((c: any) => c.text ?? "").join("");
  }
  expect(res.headers.get("content-type")).toStartWith("text/event-stream");
  const events = sseData(await res.text());
  if (route === "/v1/chat/completions") return events.map((e) => e.choices?.[0]?.delta?.content ?? "").join("");
  if (route === "/v1/messages") return events.filter((e) => e.type === "content_block_delta").map((e) => e.delta.text).join("");
  return events.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
}

const label = (a: Ask, stream: boolean) => `${a.route} ${a.model}, ${stream ? "streamed" : "not streamed"}`;

/** Where LiteLLM 1.108.7 passes the provider's answer headers back (as llm_provider-*), seen with this version. */
function litellmPassesHeadersBack(a: Ask, stream: boolean): boolean {
  return a.route !== "/v1/messages" || stream;
}

for (const forwarding of ["global", "model-groups"] as const) {
  describe.skipIf(Boolean(missing))(`the memory chain, forwarding ${forwarding === "global" ? "on for all (general_settings)" : "per model group (litellm_settings.model_group_settings)"}`, () => {
    let c: Chain | undefined;
    beforeAll(async () => {
      c = await startChain(forwarding);
    });
    afterAll(() => stopChain(c));

    test("memproxy's analysis of the file says what LiteLLM does: on", () => {
      expect(analyzeChain(c!.config.doc, CHAIN_ENV)).toMatchObject({ memory_id_forwarding: "on", models_without_forwarding: [] });
    });

    for (const a of ASKS) {
      for (const stream of [false, true]) {
        test(`${label(a, stream)}: x-sm-user-id ${a.user} reaches Supermemory's router exactly once, with the key`, async () => {
          const said = `chain ${crypto.randomUUID()}`;
          const res = await ask(c!.url, a, said, stream);
          expect(res.status).toBe(200);
          const text = await answerText(res, a.route, stream);
          const call = await c!.sm.callWith(said);
          // One header, one value: a second copy would arrive joined as "a, b".
          expect(call.received.headers.get("x-sm-user-id")).toBe(a.user);
          expect(call).toMatchObject({ userId: a.user, userIdFrom: "header", keyOk: true });
          expect(call.providerUrl).toStartWith(a.model.startsWith("claude") ? "https://api.anthropic.com/v1/messages" : `https://api.openai.com/v1${a.route.slice(3)}`);
          // The answer is the provider's, for this request, and it passed the router.
          expect(text).toBe(`fake reply for ${a.user}: ${said}`);
          const back = res.headers.get("llm_provider-x-supermemory-conversation-id");
          if (litellmPassesHeadersBack(a, stream)) expect(back).toBe(call.conversationId);
          else expect(back).toBeNull();
          // What memproxy reads from that answer: memory used, or (where LiteLLM passes nothing back) cannot tell.
          expect(memoryOutcome(headerMap(res.headers))?.state ?? null).toBe(litellmPassesHeadersBack(a, stream) ? "used" : null);
        });
      }
    }
  });
}

describe.skipIf(Boolean(missing))("the memory chain without the forwarding setting", () => {
  let c: Chain | undefined;
  beforeAll(async () => {
    c = await startChain("none");
  });
  afterAll(() => stopChain(c));

  test("memproxy's analysis of the file says what LiteLLM does: off, with the line to add", () => {
    const report = analyzeChain(c!.config.doc, CHAIN_ENV);
    expect(report).toMatchObject({ memory_id_forwarding: "off", models_without_forwarding: ["gpt-4o", "claude-*"], ok: false });
    expect(report.problems.map((p) => p.fix)).toContain("general_settings:\n  forward_client_headers_to_llm_api: true");
  });

  for (const a of ASKS) {
    for (const stream of [false, true]) {
      test(`${label(a, stream)}: no id reaches the router, not as x-pass-x-sm-user-id, x-litellm-end-user-id or ?userId= either`, async () => {
        const said = `dropped ${crypto.randomUUID()}`;
        const others = { "x-pass-x-sm-user-id": a.user, "x-litellm-end-user-id": a.user };
        const res = await ask(c!.url, a, said, stream, others, a.route === "/v1/messages" ? `&userId=${a.user}` : `?userId=${a.user}`);
        expect(res.status).toBe(200);
        expect(await answerText(res, a.route, stream)).toBe(`fake reply for (no x-sm-user-id): ${said}`);
        const call = await c!.sm.callWith(said);
        expect(call).toMatchObject({ userId: null, userIdFrom: null });
        for (const name of ["x-sm-user-id", "x-pass-x-sm-user-id", "x-litellm-end-user-id"]) expect(call.received.headers.get(name)).toBeNull();
        expect(call.received.path).not.toContain("userId");
        // The key still arrives (it is LiteLLM's own extra header): memory runs, keyed by no one.
        expect(call.keyOk).toBe(true);
      });
    }
  }

  test("[wiring] memproxy says so at start, naming the lines to add, and /health has memory_id_forwarding: off", async () => {
    const warning = c!.mp.lines.find((l) => l.includes("forward_client_headers_to_llm_api"));
    expect(warning).toBeDefined();
    expect(warning).toContain("x-sm-user-id");
    expect(await health(c!.url)).toMatchObject({ memory_id_forwarding: "off" });
  });

  test("[wiring] memproxy doctor: FAIL for the setting and for the live check, exit 1", async () => {
    const r = await runBinary(c!.bin, ["doctor", "--config", c!.config.path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("[FAIL] forwarding: LiteLLM does not forward client headers to the provider");
    expect(r.stdout).toContain("[FAIL] live check: gpt-4o: x-sm-user-id did not arrive: LiteLLM dropped it");
  });
});

describe.skipIf(Boolean(missing))("the memory chain: what memproxy hears back (global forwarding)", () => {
  let c: Chain | undefined;
  beforeAll(async () => {
    c = await startChain("global");
  });
  afterAll(() => stopChain(c));

  /** Sends chat requests for one memory id and waits until memproxy has finished (logged) each of them. */
  async function send(user: string, n: number, extra: Record<string, string> = {}): Promise<Response[]> {
    const out: Response[] = [];
    for (let i = 0; i < n; i++) {
      const res = await ask(c!.url, ASKS[0]!, `heard ${crypto.randomUUID()}`, false, { "x-memory-user-id": user, ...extra });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      await c!.mp.waitForLine(res.headers.get("x-request-id")!);
      out.push(res);
    }
    return out;
  }
  const scrape = async () => parsePrometheus(await (await fetch(c!.url + "/metrics")).text());
  const stats = async (): Promise<any> => (await fetch(c!.url + "/memory-routing/stats")).json();

  test("the client gets Supermemory's headers untouched (as LiteLLM renames them)", async () => {
    c!.sm.mode = "memory";
    const [res] = await send("e2e-headers", 1);
    expect(res!.headers.get("llm_provider-x-supermemory-conversation-id")).toStartWith("conv_fake_");
    expect(res!.headers.get("llm_provider-x-supermemory-context-modified")).toBe("false");
    expect(res!.headers.get("llm_provider-x-supermemory-chunks-retrieved")).toBe("0");
  });

  test("memoryOutcome on each route: error and absent read from the real LiteLLM's answers; null where it passes nothing back", async () => {
    try {
      for (const mode of ["fail", "bare"] as const) {
        c!.sm.mode = mode;
        for (const a of ASKS) {
          for (const stream of [false, true]) {
            const res = await ask(c!.url, a, `outcome ${crypto.randomUUID()}`, stream);
            expect(res.status).toBe(200);
            await res.arrayBuffer();
            const expected = !litellmPassesHeadersBack(a, stream) ? null : mode === "fail" ? "error" : "absent";
            expect({ mode, ask: label(a, stream), state: memoryOutcome(headerMap(res.headers))?.state ?? null }).toEqual({ mode, ask: label(a, stream), state: expected });
          }
        }
      }
    } finally {
      c!.sm.mode = "memory";
    }
  });

  test("LiteLLM 1.108.7 cannot add a model at run time without a database (why doctor starts its own LiteLLM)", async () => {
    const res = await fetch(c!.url + "/model/new", {
      method: "POST",
      headers: { ...openaiAuth, "content-type": "application/json" },
      body: JSON.stringify({ model_name: "doctor", litellm_params: { model: "openai/gpt-4o", api_base: "http://127.0.0.1:9/v1" } }),
    });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain("No DB Connected");
  });

  test("doctor (in process) against the real LiteLLM: the id and the key arrive for every model, exit 0", async () => {
    const env = { ...process.env, ...CHAIN_ENV };
    const config = parseConfig(readFileSync(c!.config.path, "utf8"), c!.config.path, env);
    const lines: string[] = [];
    const code = await runDoctor({ config, doc: c!.config.doc, out: (l) => lines.push(l), env });
    const text = lines.join("\n");
    expect(text).toContain(`[ok] LiteLLM: reachable at http://127.0.0.1:${c!.config.litellmPort}, version ${PINNED}`);
    expect(text).toContain(`[ok] memproxy: running at ${c!.url}`);
    expect(text).toMatch(/\[ok\] live check: x-sm-user-id: "[^"]+" and x-supermemory-api-key arrived exactly once for gpt-4o, claude-\*/);
    expect(lines.filter((l) => l.startsWith("[FAIL]"))).toEqual([]);
    expect(code).toBe(0);
  });

  test("[wiring] memory used is counted per id in /metrics and /memory-routing/stats; context added from the second request on", async () => {
    c!.sm.mode = "memory";
    await send("e2e-used", 3);
    const m = await scrape();
    expect(sampleValue(m, "memproxy_memory_answers_total", { user_id: "e2e-used", state: "used" })).toBe(3);
    expect(sampleValue(m, "memproxy_memory_context_added_total", { user_id: "e2e-used" })).toBe(2);
    expect((await stats()).users["e2e-used"].memory).toEqual({ used: 3, context_added: 2, errors: 0, absent: 0 });
  });

  test("[wiring] memory failing (x-supermemory-error): counted as errors, and a warning in the log", async () => {
    c!.sm.mode = "fail";
    try {
      await send("e2e-failing", 5);
      await send("e2e-after", 1); // its access line comes after anything logged for the ones before
    } finally {
      c!.sm.mode = "memory";
    }
    expect(sampleValue(await scrape(), "memproxy_memory_answers_total", { user_id: "e2e-failing", state: "error" })).toBe(5);
    expect(c!.mp.lines.some((l) => /memory is failing for user id \\?"e2e-failing\\?"/.test(l))).toBe(true);
  });

  test("[wiring] no memory header at all (a router-less link): counted as absent, one rate-limited warning, answers untouched", async () => {
    c!.sm.mode = "bare";
    let sent: Response[];
    try {
      sent = await send("e2e-bare", 10);
      await send("e2e-after", 1);
    } finally {
      c!.sm.mode = "memory";
    }
    expect(sent.every((r) => r.headers.get("llm_provider-x-supermemory-conversation-id") === null)).toBe(true);
    expect(sampleValue(await scrape(), "memproxy_memory_answers_total", { user_id: "e2e-bare", state: "absent" })).toBe(10);
    expect((await stats()).users["e2e-bare"].memory).toMatchObject({ used: 0, absent: 10 });
    expect(c!.mp.lines.filter((l) => /memory is off for user id \\?"e2e-bare\\?"/.test(l))).toHaveLength(1);
  });

  test("[wiring] conversations: Claude Code's session header becomes x-sm-conversation-id; a client's own is kept, once", async () => {
    const session = crypto.randomUUID();
    const messages = ASKS[2]!;
    const said = `session ${crypto.randomUUID()}`;
    await (await ask(c!.url, messages, said, true, { "x-claude-code-session-id": session })).text();
    expect((await c!.sm.callWith(said)).received.headers.get("x-sm-conversation-id")).toBe(session);

    const own = `own ${crypto.randomUUID()}`;
    await (await ask(c!.url, messages, own, true, { "x-claude-code-session-id": session, "x-sm-conversation-id": "conv-chosen" })).text();
    expect((await c!.sm.callWith(own)).received.headers.get("x-sm-conversation-id")).toBe("conv-chosen");

    const none = `no session ${crypto.randomUUID()}`;
    await (await ask(c!.url, messages, none, true)).text();
    expect((await c!.sm.callWith(none)).received.headers.get("x-sm-conversation-id")).toBeNull();
  });

  test("[wiring] /health says memory_id_forwarding: on; memproxy doctor through the binary: every check ok, exit 0", async () => {
    expect(await health(c!.url)).toMatchObject({ memory_id_forwarding: "on" });
    const r = await runBinary(c!.bin, ["doctor", "--config", c!.config.path]);
    expect(r.stdout).toContain("[ok] forwarding: LiteLLM forwards x-sm-user-id for every model");
    expect(r.stdout).toContain("[ok] live check: x-sm-user-id");
    expect(r.stdout.split("\n").filter((l) => l.startsWith("[FAIL]"))).toEqual([]);
    expect(r.code).toBe(0);
  });
});

/** Runs the compiled binary to its end with the chain's environment. */
function runBinary(bin: string, args: string[]): Promise<Finished> {
  return runToEnd([bin, ...args], { cwd: dir, env: { ...process.env, ...CHAIN_ENV } });
}
