// `memproxy doctor` against real listeners: a stand-in LiteLLM that answers LiteLLM's health endpoints, a
// running memproxy, a LiteLLM that is down, good and broken configs, and the live check's temporary LiteLLM
// (here the stand-in executable, test/support/fake-litellm-fixture.ts; test/e2e/litellm.e2e.test.ts runs it
// with the real LiteLLM).
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { parseConfig } from "../src/config.ts";
import { runDoctor, TESTED_LITELLM_VERSION } from "../src/doctor.ts";
import { parseLitellmYaml } from "../src/litellm-config.ts";
import { Metrics } from "../src/metrics.ts";
import { startProxy } from "./support/memproxy.ts";
import { freePort } from "./support/process.ts";

const ROOT = join(import.meta.dir, "..");
const EXAMPLE = readFileSync(join(ROOT, "config.example.yaml"), "utf8");
const MASTER_KEY = "sk-doctor-test-master-key-0123456789";
const ENV = { PATH: process.env.PATH, LITELLM_MASTER_KEY: MASTER_KEY, SUPERMEMORY_API_KEY: "sm-test-key", OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" };
const FAKE_LITELLM = [process.execPath, join(ROOT, "test", "support", "fake-litellm-fixture.ts")];
const dir = mkdtempSync(join(tmpdir(), "memproxy-doctor-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A stand-in for a running LiteLLM's public and keyed health endpoints; `version` as /health/readiness/details tells it. */
function standInLitellm(version = TESTED_LITELLM_VERSION) {
  const seen: { path: string; auth: string | null }[] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname;
      seen.push({ path, auth: req.headers.get("authorization") });
      if (path === "/health/liveliness") return Response.json("I'm alive!");
      if (path === "/health/readiness/details") {
        if (req.headers.get("authorization") !== `Bearer ${MASTER_KEY}`) return Response.json({ error: { message: "Authentication Error" } }, { status: 401 });
        return Response.json({ status: "healthy", db: "Not connected", litellm_version: version });
      }
      return Response.json({ error: "not here" }, { status: 404 });
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, seen, [Symbol.dispose]: () => server.stop(true) };
}

/** config.example.yaml with memproxy's side pointed at `backend` (and the given changes to the document). */
function exampleWith(backend: string, change: (doc: any) => void = () => {}, memproxy: Record<string, unknown> = {}): string {
  const doc = parse(EXAMPLE);
  doc.litellm_backend_url = backend;
  doc.memproxy.listen.port = freePort();
  Object.assign(doc.memproxy, memproxy);
  change(doc);
  return stringify(doc);
}

async function doctor(yaml: string, options: { env?: Record<string, string | undefined>; live?: boolean; command?: string[] } = {}) {
  const env = options.env ?? ENV;
  const config = parseConfig(yaml, "shared.yaml", env);
  const withCommand = options.command ? { ...config, litellm: { ...config.litellm, command: options.command } } : config;
  const lines: string[] = [];
  const code = await runDoctor({ config: withCommand, doc: parseLitellmYaml(yaml), out: (l) => lines.push(l), env, live: options.live ?? false });
  return { code, lines, text: lines.join("\n") };
}

describe("memproxy doctor, no live check", () => {
  test("a good config and a reachable LiteLLM of the tested version: every check ok, exit 0", async () => {
    using litellm = standInLitellm();
    const r = await doctor(exampleWith(litellm.url));
    expect(r.code).toBe(0);
    expect(r.lines[0]).toStartWith("memproxy doctor ");
    expect(r.text).toContain("[ok] memproxy config: shared.yaml is valid; the memory id goes out as x-sm-user-id");
    expect(r.text).toContain(`[ok] LiteLLM: reachable at ${litellm.url}, version ${TESTED_LITELLM_VERSION}`);
    expect(r.text).toContain("[ok] forwarding: LiteLLM forwards x-sm-user-id for every model (gpt-4o, claude-*)");
    expect(r.text).toContain("[ok] api_base: every model goes through Supermemory's router");
    expect(r.text).toContain("[ok] Supermemory key:");
    expect(r.text).toContain("[ok] master key: LiteLLM will accept it");
    expect(r.text).toContain("[skip] live check: not run; nothing showed the id arriving");
    expect(r.lines.filter((l) => l.startsWith("[FAIL]"))).toEqual([]);
    expect(r.lines.at(-1)).toStartWith("memory should work");
    // The version came from the keyed readiness details, asked with LiteLLM's master key from the environment.
    expect(litellm.seen).toContainEqual({ path: "/health/readiness/details", auth: `Bearer ${MASTER_KEY}` });
    // memproxy itself was not running: a warning with the command to start it, not a failure.
    expect(r.text).toMatch(/\[warn\] memproxy: not running at http:\/\/127\.0\.0\.1:\d+\n {7}fix: memproxy --config shared\.yaml/);
  });

  test("LiteLLM down: FAIL with how to start it, exit 1", async () => {
    const down = `http://127.0.0.1:${freePort()}`;
    const r = await doctor(exampleWith(down));
    expect(r.code).toBe(1);
    expect(r.text).toContain(`[FAIL] LiteLLM: not reachable at ${down}`);
    expect(r.text).toContain(`fix: start LiteLLM on the same file: litellm --config shared.yaml --port ${new URL(down).port}`);
    expect(r.lines.at(-1)).toBe("1 problem stops memory from working (and 1 warning)");
  });

  test("LiteLLM down while memproxy is to start it: the fix says to start memproxy", async () => {
    const r = await doctor(exampleWith(`http://127.0.0.1:${freePort()}`, () => {}, { litellm: { spawn: true } }));
    expect(r.code).toBe(1);
    expect(r.text).toContain("fix: start memproxy, which starts LiteLLM: memproxy --config shared.yaml");
  });

  test("another LiteLLM version: a warning naming the tested one; without the master key, version unknown", async () => {
    using other = standInLitellm("1.200.0");
    const r = await doctor(exampleWith(other.url));
    expect(r.code).toBe(0);
    expect(r.text).toContain(`[warn] LiteLLM: reachable at ${other.url}, version 1.200.0; memproxy's header forwarding was verified with ${TESTED_LITELLM_VERSION}`);
    using tested = standInLitellm();
    const noKey = await doctor(exampleWith(tested.url), { env: { ...ENV, LITELLM_MASTER_KEY: undefined } });
    expect(noKey.text).toContain(`[ok] LiteLLM: reachable at ${tested.url}; version unknown (it needs the master key, which is not set here)`);
  });

  test("a broken config: each problem a FAIL with the YAML to add, exit 1", async () => {
    using litellm = standInLitellm();
    const broken = exampleWith(litellm.url, (doc) => {
      delete doc.general_settings.forward_client_headers_to_llm_api;
      doc.model_list[1].litellm_params.api_base = "https://api.supermemory.ai/v3/https://api.anthropic.com/v1";
      delete doc.model_list[0].litellm_params.extra_headers;
    });
    const r = await doctor(broken, { env: { ...ENV, LITELLM_MASTER_KEY: "sk-1234" } });
    expect(r.code).toBe(1);
    const fails = r.lines.filter((l) => l.startsWith("[FAIL]"));
    expect(fails).toEqual([
      "[FAIL] forwarding: LiteLLM does not forward client headers to the provider, so x-sm-user-id never reaches Supermemory",
      expect.stringContaining("[FAIL] api_base: model_list[1] (claude-*): the anthropic provider URL https://api.anthropic.com/v1 ends with /v1"),
      expect.stringContaining("[FAIL] Supermemory key: model_list[0] (gpt-4o): no x-supermemory-api-key"),
      "[FAIL] master key: LiteLLM's master key is a publicly known default (sk-1234): LiteLLM refuses to start",
    ]);
    const fixOf = (failLine: string) => {
      const i = r.lines.indexOf(failLine);
      const fix: string[] = [];
      for (let j = i + 1; j < r.lines.length && r.lines[j]!.startsWith("       "); j++) fix.push(r.lines[j]!.slice(7));
      return fix.join("\n");
    };
    expect(fixOf(fails[0]!)).toBe("fix:\n  general_settings:\n    forward_client_headers_to_llm_api: true");
    // The YAML below "fix:" is the block to copy into the file.
    expect(parse(fixOf(fails[1]!).replace(/^fix:\n/, "").replace(/^ {2}/gm, ""))).toEqual({
      model_list: [{ model_name: "claude-*", litellm_params: { api_base: "https://api.supermemory.ai/v3/https://api.anthropic.com" } }],
    });
    // The file reads the key from LITELLM_MASTER_KEY already: the fix is a new value for it.
    expect(fixOf(fails[3]!)).toBe('fix: export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 32)"      # a service: put it in memproxy.env');
    expect(r.lines.at(-1)).toStartWith("4 problems stop memory from working");
  });

  test("memproxy sending the id in another header than Supermemory reads: FAIL", async () => {
    using litellm = standInLitellm();
    const r = await doctor(exampleWith(litellm.url, () => {}, { forward: { user_id_header: "x-user" } }));
    expect(r.code).toBe(1);
    expect(r.text).toContain("[FAIL] memproxy config: the memory id goes out as x-user, but Supermemory reads x-sm-user-id");
  });

  test("a running memproxy is found, and answers it has seen without memory are a warning per id", async () => {
    using litellm = standInLitellm();
    const metrics = new Metrics();
    await using mp = startProxy(`litellm_backend_url: ${litellm.url}\n`, process.env, { metrics });
    const absent = { state: "absent", context_added: null, error: null, conversation_id: null, tokens_processed: null, chunks_retrieved: null } as const;
    metrics.memory(metrics.user("claude-cli"), absent);
    metrics.memory(metrics.user("claude-cli"), { ...absent, state: "used", context_added: true });
    metrics.memory(metrics.user("codex"), { ...absent, state: "used" });
    const r = await doctor(exampleWith(litellm.url, (doc) => (doc.memproxy.listen.port = mp.port)));
    expect(r.text).toContain(`[ok] memproxy: running at http://127.0.0.1:${mp.port}`);
    expect(r.text).toContain('[warn] memproxy has seen answers without memory for "claude-cli": 1 with memory, 0 with x-supermemory-error, 1 without any Supermemory header');
    expect(r.text).not.toContain('"codex"');
    expect(r.code).toBe(0);
  });
});

describe("memproxy doctor, live check with a stand-in LiteLLM executable", () => {
  test("no LiteLLM executable: says it could not verify the id arriving, and how to point at one", async () => {
    using litellm = standInLitellm();
    const r = await doctor(exampleWith(litellm.url), { live: true, command: ["/nonexistent/litellm"] });
    expect(r.text).toContain("[skip] live check: not run: no LiteLLM executable '/nonexistent/litellm' to start a temporary LiteLLM with; nothing showed the id arriving");
    expect(r.text).toContain("fix: point memproxy.litellm.command (or --litellm-command) at LiteLLM's executable");
    expect(r.code).toBe(0);
  });

  test("a LiteLLM that exits at start: FAIL with its own words", async () => {
    using litellm = standInLitellm();
    const r = await doctor(exampleWith(litellm.url), { live: true, command: FAKE_LITELLM, env: { ...ENV, FAKE_MODE: "exit-at-start" } });
    expect(r.code).toBe(1);
    expect(r.text).toContain("[FAIL] live check: LiteLLM");
    expect(r.text).toContain("did not start with this file's settings: it exited (exit code 3)");
    expect(r.text).toContain("ERROR: something is wrong with the config");
  });

  test("a LiteLLM that answers without calling the model: FAIL per model; its process and temporary files are gone afterwards", async () => {
    using litellm = standInLitellm();
    const before = new Set(doctorDirs());
    const r = await doctor(exampleWith(litellm.url), { live: true, command: FAKE_LITELLM });
    expect(r.code).toBe(1);
    expect(r.text).toContain("[FAIL] live check: gpt-4o: LiteLLM answered without calling the model's api_base");
    expect(r.text).toContain("[FAIL] live check: claude-*: LiteLLM answered without calling the model's api_base");
    expect(r.text).not.toContain("fake litellm starting"); // its output is not doctor's
    expect(doctorDirs().filter((d) => !before.has(d))).toEqual([]);
    expect(temporaryLitellms()).toEqual([]);
  });
});

/** doctor's temporary directories in the temp folder. */
function doctorDirs(): string[] {
  return readdirSync(tmpdir()).filter((d) => d.startsWith("memproxy-doctor-") && !join(tmpdir(), d).startsWith(dir));
}

/** Running stand-in LiteLLMs started on a config in one of doctor's temporary directories. */
function temporaryLitellms(): string[] {
  if (!existsSync("/proc/self/cmdline")) return [];
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .map((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ");
      } catch {
        return "";
      }
    })
    .filter((c) => c.includes("fake-litellm-fixture.ts") && c.includes("memproxy-doctor-") && !c.includes("memproxy-doctor-test-"));
}
