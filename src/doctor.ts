// `memproxy doctor`: checks the whole chain to Supermemory (memproxy's config, LiteLLM reachable and its
// version, the shared config's LiteLLM side, and a live request that shows the id arriving) and prints a
// checklist, each line with its fix.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { redactUrl } from "./address.ts";
import { LIVENESS_PATH } from "./backends.ts";
import { litellmUrl, type Config } from "./config.ts";
import { ENDPOINTS } from "./endpoints.ts";
import { analyzeChain, litellmMasterKey, type ChainProblem, type ChainReport } from "./litellm-config.ts";
import { silentLogger } from "./log.ts";
import { compileRouter } from "./router.ts";
import { startServer } from "./server.ts";
import { RUNTIME_ENV_NAMES } from "./runtime-env.ts";
import { withParentDeathSignal } from "./supervisor.ts";
import { VERSION } from "./version.ts";

/** The LiteLLM version memproxy's header forwarding was verified with (scripts/setup-litellm.sh). */
export const TESTED_LITELLM_VERSION = "1.108.7";
/** Supermemory reads the memory id from this header. */
const MEMORY_HEADER = "x-sm-user-id";

/** What doctor needs. */
export interface DoctorOptions {
  /** memproxy's loaded configuration. */
  config: Config;
  /** The whole shared YAML document (LiteLLM's sections included), best parsed with parseLitellmYaml. */
  doc: Record<string, unknown>;
  /** Where the checklist goes, one line per call. */
  out: (line: string) => void;
  /** For the HTTP checks (memproxy's and LiteLLM's endpoints). */
  fetch?: typeof fetch;
  /** The environment (os.environ/ references, LITELLM_MASTER_KEY); default process.env. */
  env?: Record<string, string | undefined>;
  /**
   * Run the live check: a temporary LiteLLM with the file's forwarding settings, its models pointed at a
   * listener of doctor's, behind memproxy's own routing; no model is called. Default true.
   */
  live?: boolean;
}

/** ok, FAIL (stops memory from working), warn, skip (not checked), info (progress, no verdict). */
type Mark = "ok" | "FAIL" | "warn" | "skip" | "info";

/**
 * Runs the checks and prints the checklist.
 * @returns the exit code: 1 when something would stop memory from working, else 0.
 */
export async function runDoctor(options: DoctorOptions): Promise<number> {
  const { config, doc, out } = options;
  const env = options.env ?? process.env;
  const http = options.fetch ?? fetch;
  let failures = 0;
  let warnings = 0;
  const line = (mark: Mark, text: string, fix?: string) => {
    if (mark === "FAIL") failures++;
    if (mark === "warn") warnings++;
    out(mark === "info" ? `       ${text}` : `[${mark}] ${text}`);
    // A one-line fix (a command) follows "fix:"; YAML goes below it, indented as a block to copy.
    if (fix && !fix.includes("\n")) out(`       fix: ${fix}`);
    else if (fix) for (const l of ["fix:", ...fix.split("\n").map((f) => `  ${f}`)]) out(`       ${l}`);
  };
  out(`memproxy doctor ${VERSION}: ${config.source}`);

  // memproxy's own config: loaded, and the id goes out in the header Supermemory reads.
  const idHeaders = [config.forward.user_id_header, ...config.forward.also_send_user_id_as];
  if (idHeaders.includes(MEMORY_HEADER)) {
    line("ok", `memproxy config: ${config.source} is valid; the memory id goes out as ${MEMORY_HEADER} (default id ${config.routing.default_user_id})`);
  } else {
    line(
      "FAIL",
      `memproxy config: the memory id goes out as ${config.forward.user_id_header}, but Supermemory reads ${MEMORY_HEADER}`,
      `memproxy:\n  forward:\n    user_id_header: ${MEMORY_HEADER}`,
    );
  }

  // memproxy running (where clients reach it): only a warning, doctor may run before it starts.
  const timeout = Math.max(config.forward.health_timeout, 500);
  const get = async (url: string, headers: Record<string, string> = {}): Promise<Response | undefined> => {
    try {
      return await http(url, { headers, signal: AbortSignal.timeout(timeout) });
    } catch {
      return undefined;
    }
  };
  // http://host:port with a wildcard address reached on loopback (the same rule as for LiteLLM's address).
  const memproxyUrl = config.listen.port ? litellmUrl(config.listen) : undefined;
  const accessKey = config.access.keys[0];
  const auth: Record<string, string> = accessKey ? { authorization: `Bearer ${accessKey}` } : {};
  const running = memproxyUrl ? await get(memproxyUrl + ENDPOINTS.liveness) : undefined;
  if (running?.ok) {
    line("ok", `memproxy: running at ${memproxyUrl}`);
    await seenMemory(get, memproxyUrl!, auth, line);
  } else {
    line("warn", `memproxy: not running at ${memproxyUrl ?? "(port 0: a port chosen at start)"}`, `memproxy --config ${config.source}`);
  }

  // LiteLLM reachable, and its version (LiteLLM tells it only with a key: /health/readiness/details).
  const masterKey = litellmMasterKey(doc, env);
  for (const url of config.backends) {
    // Shown without a password its URL may carry.
    const backend = redactUrl(url);
    const alive = await get(url + LIVENESS_PATH);
    if (!alive?.ok) {
      const fix = config.litellm.spawn
        ? `start memproxy, which starts LiteLLM: memproxy --config ${config.source}`
        : `start LiteLLM on ${config.litellm.config === undefined ? "the same file" : "its file"}: litellm --config ${config.litellm.config ?? config.source} --port ${portOf(backend)}   (or let memproxy start it: memproxy.litellm.spawn: true)`;
      line("FAIL", `LiteLLM: not reachable at ${backend}${alive ? ` (HTTP ${alive.status})` : ""}`, fix);
      continue;
    }
    const details = masterKey ? await get(url + "/health/readiness/details", { authorization: `Bearer ${masterKey}` }) : undefined;
    const version = details?.ok ? String(((await details.json().catch(() => ({}))) as { litellm_version?: unknown }).litellm_version ?? "") : "";
    if (!version) {
      line("ok", `LiteLLM: reachable at ${backend}; version unknown (${masterKey ? "the master key was refused" : "it needs the master key, which is not set here"})`);
    } else if (version !== TESTED_LITELLM_VERSION) {
      line("warn", `LiteLLM: reachable at ${backend}, version ${version}; memproxy's header forwarding was verified with ${TESTED_LITELLM_VERSION} (the live check below uses yours)`);
    } else {
      line("ok", `LiteLLM: reachable at ${backend}, version ${version}`);
    }
  }

  // The shared config's LiteLLM side.
  const report = analyzeChain(doc, { ...env, ...config.litellm.env }, { envIsLitellms: config.litellm.spawn });
  chainLines(report, line);

  // The live check, or what could not be verified.
  if (options.live === false) {
    line("skip", "live check: not run; nothing showed the id arriving");
  } else {
    await liveCheck(config, doc, env, report, http, line);
  }
  line(
    "skip",
    "not verified: Supermemory itself (that takes a model call); after real requests, memproxy's /memory-routing/stats and /metrics (memproxy_memory_answers_total) show whether memory was used",
  );

  out(
    failures
      ? `${failures} problem${failures === 1 ? "" : "s"} stop${failures === 1 ? "s" : ""} memory from working${warnings ? ` (and ${warnings} warning${warnings === 1 ? "" : "s"})` : ""}`
      : `memory should work${warnings ? ` (${warnings} warning${warnings === 1 ? "" : "s"})` : ""}`,
  );
  return failures ? 1 : 0;
}

type Line = (mark: Mark, text: string, fix?: string) => void;

/** What the running memproxy has seen of memory so far (its stats once it counts memory answers). */
async function seenMemory(get: (url: string, headers?: Record<string, string>) => Promise<Response | undefined>, url: string, auth: Record<string, string>, line: Line): Promise<void> {
  const res = await get(url + ENDPOINTS.stats, auth);
  if (!res?.ok) return;
  const stats = (await res.json().catch(() => undefined)) as { users?: Record<string, { memory?: { used: number; errors: number; absent: number } }> } | undefined;
  const users = Object.entries(stats?.users ?? {}).filter(([, u]) => u.memory && u.memory.used + u.memory.errors + u.memory.absent > 0);
  for (const [id, u] of users) {
    const m = u.memory!;
    if (m.errors + m.absent === 0) continue;
    line(
      "warn",
      `memproxy has seen answers without memory for ${JSON.stringify(id)}: ${m.used} with memory, ${m.errors} with x-supermemory-error, ${m.absent} without any Supermemory header`,
      m.absent ? "each model's api_base must go through https://api.supermemory.ai/v3/<provider URL> (see below)" : "check the Supermemory key (x-supermemory-api-key) and Supermemory's status",
    );
  }
}

const GROUPS: { title: string; codes: ChainProblem["code"][] }[] = [
  { title: "forwarding", codes: ["forwarding_off", "forwarding_partial", "forwarding_not_boolean", "forwarding_misplaced", "forwarding_empty_list", "model_group_settings_invalid"] },
  { title: "api_base", codes: ["no_models", "api_base_missing", "api_base_env_unset", "not_via_router", "router_host", "provider_url", "provider_untested"] },
  { title: "Supermemory key", codes: ["supermemory_key_missing", "supermemory_key_env_unset", "supermemory_key_in_file"] },
  { title: "master key", codes: ["master_key_missing", "master_key_weak", "master_key_in_file"] },
];

/** One ok line per part of the analysis without problems, else one line per problem with its fix. */
function chainLines(report: ChainReport, line: Line): void {
  const names = [...new Set(report.models.map((m) => m.model_name))];
  const okText: Record<string, string> = {
    forwarding: `forwarding: LiteLLM forwards ${MEMORY_HEADER} for every model (${names.join(", ") || "none"})`,
    api_base: `api_base: every model goes through Supermemory's router with a well-formed provider URL`,
    "Supermemory key": `Supermemory key: every model sends x-supermemory-api-key from the environment`,
    "master key": `master key: LiteLLM will accept it${report.master_key === "allowed-weak" ? " (a weak key, allowed by dangerously_permit_weak_or_unset_master_key)" : ""}`,
  };
  for (const group of GROUPS) {
    const problems = report.problems.filter((p) => group.codes.includes(p.code));
    if (!problems.length) line("ok", okText[group.title]!);
    for (const p of problems) line(p.severity === "error" ? "FAIL" : "warn", `${group.title}: ${p.message}`, p.fix);
  }
}

/** Providers whose API doctor's listener answers (and Supermemory's router documents). */
const LIVE_PROVIDERS = new Set(["openai", "anthropic", "text-completion-openai", "openai_like", "hosted_vllm"]);
/** Settings that decide which client headers LiteLLM forwards; the rest of the file stays out of the temporary LiteLLM. */
const FORWARDING_GENERAL = ["forward_client_headers_to_llm_api", "litellm_key_header_name", "forward_llm_provider_auth_headers", "user_header_name", "user_header_mappings"];
const FORWARDING_LITELLM = ["model_group_settings", "add_user_information_to_llm_headers"];

/**
 * The live check. LiteLLM 1.108.7 adds a model at run time only with a database (/model/new and
 * /health/test_connection answer "No DB Connected"), so the running LiteLLM cannot be pointed at doctor. Instead
 * doctor starts a temporary LiteLLM (the configured command) with the file's forwarding settings and each model's
 * api_base pointed at a listener of its own (the same /v3/<provider URL> form), puts memproxy's own routing in
 * front (an in-process server with this config), sends one request per model name, and looks at what arrived.
 * No provider is called and no real provider key is sent.
 */
async function liveCheck(
  config: Config,
  doc: Record<string, unknown>,
  env: Record<string, string | undefined>,
  report: ChainReport,
  http: typeof fetch,
  line: Line,
): Promise<void> {
  const command = typeof config.litellm.command === "string" ? [config.litellm.command] : [...config.litellm.command];
  if (!Bun.which(command[0]!, { PATH: env.PATH ?? process.env.PATH })) {
    line("skip", `live check: not run: no LiteLLM executable '${command[0]}' to start a temporary LiteLLM with; nothing showed the id arriving`, "point memproxy.litellm.command (or --litellm-command) at LiteLLM's executable");
    return;
  }
  const models = uniqueModels(doc).filter((m) => m.provider !== null && LIVE_PROVIDERS.has(m.provider));
  if (!models.length) {
    line("skip", "live check: not run: no openai/ or anthropic/ model in model_list to try");
    return;
  }

  const arrived: { model: string; path: string; headers: Headers }[] = [];
  const listener = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const body = (await req.json().catch(() => ({}))) as { model?: string };
      const path = new URL(req.url).pathname;
      arrived.push({ model: String(body.model ?? ""), path, headers: req.headers });
      return Response.json(path.endsWith("/messages") ? anthropicAnswer(String(body.model)) : openaiAnswer(String(body.model)));
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "memproxy-doctor-"));
  const masterKey = `sk-doctor-${crypto.randomUUID()}`;
  const port = freePort();
  const litellmUrl = `http://127.0.0.1:${port}`;
  let litellm: TemporaryLitellm | undefined;
  let server: ReturnType<typeof startServer> | undefined;
  try {
    const file = join(dir, "litellm.yaml");
    writeFileSync(file, stringify(temporaryConfig(doc, masterKey, `http://127.0.0.1:${listener.port}`)));
    line("info", "live check: starting a temporary LiteLLM with this file's settings (10-30 s)...");
    litellm = startTemporaryLitellm([...command, "--config", file, "--host", "127.0.0.1", "--port", String(port)], litellmEnv(env, config.litellm.env));
    const started = await litellm.ready(litellmUrl, config.litellm.ready_timeout);
    if (started !== true) {
      line("FAIL", `live check: LiteLLM (${command.join(" ")}) did not start with this file's settings: ${started}`, "fix what LiteLLM says; `litellm --config FILE` shows the same");
      return;
    }
    server = startServer({
      ...config,
      listen: { ...config.listen, host: "127.0.0.1", port: 0 },
      backends: [litellmUrl],
      backendExplicit: true,
      litellm: { ...config.litellm, spawn: false },
      access: { ...config.access, keys: [] },
    });
    const clientHeaders = { "user-agent": `memproxy-doctor/${VERSION}`, "content-type": "application/json" };
    const decided = compileRouter(config.routing, config.access)(clientHeaders);
    const expected = decided.ok ? decided.decision.user_id : undefined;
    const fine: string[] = [];
    for (const m of models) {
      const name = m.name.replaceAll("*", "doctor-check");
      const anthropic = m.provider === "anthropic";
      const marker = `memproxy doctor ${crypto.randomUUID()}`;
      const res = await http(server.url + (anthropic ? "/v1/messages" : "/v1/chat/completions"), {
        method: "POST",
        headers: { ...clientHeaders, authorization: `Bearer ${masterKey}`, ...(anthropic ? { "anthropic-version": "2023-06-01" } : {}) },
        body: JSON.stringify({ model: name, max_tokens: 1, messages: [{ role: "user", content: marker }] }),
      }).catch((err: unknown) => err as Error);
      if (res instanceof Error || !res.ok) {
        const why = res instanceof Error ? res.message : `HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`;
        line("FAIL", `live check: ${m.name}: the request through memproxy and LiteLLM failed: ${why}`);
        continue;
      }
      await res.arrayBuffer();
      const got = arrived.find((a) => a.model === name || a.model.endsWith(`/${name}`)) ?? arrived.at(-1);
      const id = got?.headers.get(MEMORY_HEADER) ?? null;
      const key = got?.headers.get("x-supermemory-api-key") ?? null;
      arrived.length = 0;
      if (!got) {
        line("FAIL", `live check: ${m.name}: LiteLLM answered without calling the model's api_base`);
      } else if (id === null) {
        const fix = report.problems.find((p) => p.code === "forwarding_off" || p.code === "forwarding_partial" || p.code === "forwarding_not_boolean")?.fix ?? "general_settings:\n  forward_client_headers_to_llm_api: true";
        line("FAIL", `live check: ${m.name}: ${MEMORY_HEADER} did not arrive: LiteLLM dropped it`, fix);
      } else if (id !== expected) {
        line("FAIL", `live check: ${m.name}: ${MEMORY_HEADER} arrived as ${JSON.stringify(id)}, expected ${JSON.stringify(expected)} exactly once`);
      } else if (!key || key.startsWith("os.environ/")) {
        line("FAIL", `live check: ${m.name}: ${MEMORY_HEADER} arrived, but x-supermemory-api-key ${key ? "was not resolved (its variable is not set)" : "did not"}`, "in the model's litellm_params:\n  extra_headers:\n    x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY    # and set SUPERMEMORY_API_KEY");
      } else {
        fine.push(m.name);
      }
    }
    if (fine.length) {
      line(
        "ok",
        `live check: ${MEMORY_HEADER}: ${JSON.stringify(expected)} and x-supermemory-api-key arrived exactly once for ${fine.join(", ")} (through memproxy's routing and a temporary LiteLLM with this file's settings; no model was called)`,
      );
    }
    line("skip", "not verified live: the running LiteLLM itself (LiteLLM adds a model at run time only with a database, so it cannot be pointed at doctor)");
  } finally {
    await server?.stop(0);
    await litellm?.stop();
    await listener.stop(true);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The model names of model_list with their provider, once each. */
function uniqueModels(doc: Record<string, unknown>): { name: string; provider: string | null }[] {
  const seen = new Map<string, string | null>();
  for (const entry of Array.isArray(doc.model_list) ? doc.model_list : []) {
    const e = (entry ?? {}) as { model_name?: unknown; litellm_params?: { model?: unknown; custom_llm_provider?: unknown } };
    if (typeof e.model_name !== "string" || seen.has(e.model_name)) continue;
    const model = typeof e.litellm_params?.model === "string" ? e.litellm_params.model : "";
    const provider = typeof e.litellm_params?.custom_llm_provider === "string" ? e.litellm_params.custom_llm_provider : model.includes("/") ? model.slice(0, model.indexOf("/")) : null;
    seen.set(e.model_name, provider);
  }
  return [...seen].map(([name, provider]) => ({ name, provider }));
}

/**
 * The temporary LiteLLM's config: the file's models with api_base pointed at `listener` (keeping the
 * /v3/<provider URL> form, so LiteLLM builds the same paths) and a dummy provider key, its extra_headers as
 * written, and only the settings that decide header forwarding.
 */
function temporaryConfig(doc: Record<string, unknown>, masterKey: string, listener: string): Record<string, unknown> {
  const general = (doc.general_settings ?? {}) as Record<string, unknown>;
  const settings = (doc.litellm_settings ?? {}) as Record<string, unknown>;
  const pick = (from: Record<string, unknown>, keys: string[]) => Object.fromEntries(keys.filter((k) => from[k] !== undefined).map((k) => [k, from[k]]));
  const models = (Array.isArray(doc.model_list) ? doc.model_list : []).map((entry) => {
    const e = (entry ?? {}) as { litellm_params?: Record<string, unknown> };
    const params = { ...e.litellm_params };
    const base = typeof params.api_base === "string" ? params.api_base : "";
    const provider = /\/v3\/(https?:\/\/.+)$/.exec(base)?.[1] ?? (base.startsWith("http") ? base : String(params.model ?? "").startsWith("anthropic/") ? "https://api.anthropic.com" : "https://api.openai.com/v1");
    params.api_base = `${listener}/v3/${provider}`;
    params.api_key = "sk-doctor-not-a-provider-key";
    return { ...e, litellm_params: params };
  });
  const litellmSettings = pick(settings, FORWARDING_LITELLM);
  return {
    model_list: models,
    general_settings: { ...pick(general, FORWARDING_GENERAL), master_key: masterKey, disable_model_info_refresh: true },
    ...(Object.keys(litellmSettings).length ? { litellm_settings: litellmSettings } : {}),
  };
}

function openaiAnswer(model: string) {
  return {
    id: "chatcmpl-doctor",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  };
}

function anthropicAnswer(model: string) {
  return {
    id: "msg_doctor",
    type: "message",
    role: "assistant",
    model,
    content: [{ type: "text", text: "ok" }],
    stop_reason: "end_turn",
    stop_sequence: null,
    usage: { input_tokens: 1, output_tokens: 1 },
  };
}

/**
 * The temporary LiteLLM's environment: the user's (for the os.environ/ references in model_list), without
 * memproxy's own Bun settings and without any database (LiteLLM would connect to it and migrate it), plus
 * memproxy.litellm.env and a quiet, offline start.
 */
function litellmEnv(env: Record<string, string | undefined>, extra: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  for (const name of [...RUNTIME_ENV_NAMES, "BUN_FEATURE_FLAG_NO_ORPHANS", "DATABASE_URL", "DIRECT_URL"]) delete out[name];
  Object.assign(out, extra);
  out.LITELLM_LOCAL_MODEL_COST_MAP ??= "True";
  out.LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS ??= "True";
  delete out.DATABASE_URL;
  return out;
}

/** A LiteLLM started for the live check only. */
interface TemporaryLitellm {
  /** Resolves with true once /health/readiness answers, else with why not (its exit and last lines, or the timeout). */
  ready(url: string, timeoutMs: number): Promise<true | string>;
  /** Stops it and its workers (its process group). */
  stop(): Promise<void>;
}

function startTemporaryLitellm(command: string[], env: Record<string, string>): TemporaryLitellm {
  let proc: ReturnType<typeof Bun.spawn>;
  try {
    proc = Bun.spawn(withParentDeathSignal(command, env.PATH), { env, stdin: "ignore", stdout: "pipe", stderr: "pipe", detached: true });
  } catch (err) {
    const why = `cannot run ${command[0]}: ${(err as Error).message}`;
    return { ready: async () => why, stop: async () => {} };
  }
  const tail: string[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      // LiteLLM colours its errors: the escapes are dropped, the text kept.
      for (const l of dec.decode(chunk, { stream: true }).split("\n")) {
        const clean = l.replace(/\x1b\[[0-9;]*m/g, "").replace(/[\u0000-\u001f]/g, "").trim();
        if (clean) tail.push(clean);
        if (tail.length > 8) tail.shift();
      }
    }
  };
  void collect(proc.stdout as ReadableStream<Uint8Array>).catch(() => {});
  void collect(proc.stderr as ReadableStream<Uint8Array>).catch(() => {});
  const group = (signal: NodeJS.Signals) => {
    try {
      process.kill(-proc.pid, signal);
    } catch {
      // already gone
    }
  };
  return {
    async ready(url, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (proc.exitCode !== null || proc.signalCode !== null) return `it exited (${proc.signalCode ?? `exit code ${proc.exitCode}`}): ${tail.join(" | ")}`;
        const ok = await fetch(url + "/health/readiness", { signal: AbortSignal.timeout(2000) }).then((r) => r.ok, () => false);
        if (ok) return true;
        await Promise.race([Bun.sleep(200), proc.exited]);
      }
      return `not ready within ${Math.round(timeoutMs / 1000)} s (memproxy.litellm.ready_timeout): ${tail.join(" | ")}`;
    },
    async stop() {
      group("SIGTERM");
      const timer = setTimeout(() => group("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(timer);
      group("SIGKILL"); // workers that outlived it
    },
  };
}

function portOf(url: string): string {
  try {
    return new URL(url).port || "80";
  } catch {
    return "8765";
  }
}

/** A loopback port nothing listens on right now. */
function freePort(): number {
  const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = l.port;
  l.stop(true);
  return port;
}
