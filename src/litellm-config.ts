// The LiteLLM side of the shared config, read as LiteLLM 1.108.7 reads it: does x-sm-user-id reach Supermemory's
// Memory Router, does every model go through the router with a well-formed provider URL and Supermemory's key,
// and will LiteLLM accept its master key. Pure: the parsed document and an environment in, a report out.
import { createHash } from "node:crypto";
import { Composer, parse, type CST } from "yaml";

/** Whether LiteLLM forwards memproxy's x-sm-user-id to the provider (here: Supermemory's router). */
export type ForwardingState = "on" | "off" | "partial";

/** One entry of model_list, as far as memory is concerned. */
export interface ModelReport {
  /** Where it is in the file, e.g. "model_list[1]". */
  where: string;
  model_name: string;
  /** The LiteLLM provider (the prefix of litellm_params.model, or custom_llm_provider), e.g. "openai". */
  provider: string | null;
  /** The api_base with any environment reference resolved and any user:password removed; null when none. */
  api_base: string | null;
  /** api_base has the router's form <router>/v3/<provider URL>. */
  via_router: boolean;
  /** The provider URL inside the router URL, e.g. https://api.openai.com/v1. */
  provider_url: string | null;
  /** The provider URL is what LiteLLM needs for this provider (e.g. anthropic without /v1, openai with /v1). */
  provider_url_ok: boolean;
  /** LiteLLM forwards the client's x- headers (so x-sm-user-id) for this model. */
  forwards_id: boolean;
  /** Supermemory's key: sent from the environment (set), written in the file, missing, or its variable unset. */
  supermemory_key: "env" | "in-file" | "missing" | "env-unset";
}

/** One thing that would stop memory from working (error) or is worth fixing (warning), with its fix. */
export interface ChainProblem {
  code:
    | "no_models"
    | "forwarding_off"
    | "forwarding_partial"
    | "forwarding_not_boolean"
    | "forwarding_misplaced"
    | "forwarding_empty_list"
    | "model_group_settings_invalid"
    | "api_base_missing"
    | "api_base_env_unset"
    | "not_via_router"
    | "router_host"
    | "provider_url"
    | "provider_untested"
    | "supermemory_key_missing"
    | "supermemory_key_env_unset"
    | "supermemory_key_in_file"
    | "master_key_missing"
    | "master_key_weak"
    | "master_key_in_file";
  severity: "error" | "warning";
  /** What is wrong and where, one sentence. */
  message: string;
  /** What to do: the exact YAML lines to add or change, or the command to run. */
  fix: string;
  /** The model_name it concerns, if any. */
  model?: string;
}

/** The analysis of the shared config's LiteLLM side. */
export interface ChainReport {
  memory_id_forwarding: ForwardingState;
  /** Model names for which LiteLLM would drop x-sm-user-id (all of them when "off"). */
  models_without_forwarding: string[];
  models: ModelReport[];
  /** LiteLLM's verdict on its master key at start: it refuses to start unless "ok" (or the override is set). */
  master_key: "ok" | "missing" | "weak" | "allowed-weak";
  problems: ChainProblem[];
  /** No error-severity problem: nothing in the file stops memory from working. */
  ok: boolean;
}

/** Options for analyzeChain. */
export interface ChainOptions {
  /**
   * Whether `env` is LiteLLM's environment (true when memproxy starts LiteLLM). When false, a variable missing
   * from `env` may still be set where LiteLLM runs: those findings become warnings.
   */
  envIsLitellms?: boolean;
}

/** Supermemory's hosted router; a self-hosted one has the same /v3/<provider URL> form on another host. */
export const SUPERMEMORY_ROUTER = "https://api.supermemory.ai/v3/";
/** The header Supermemory's router reads its API key from. */
export const SUPERMEMORY_KEY_HEADER = "x-supermemory-api-key";

/**
 * Master keys LiteLLM 1.108.7 refuses at start, by the SHA-256 of the trimmed key
 * (litellm/proxy/auth/master_key_boot_check.py PUBLICLY_KNOWN_MASTER_KEY_SHA256_DIGESTS: "sk-1234").
 */
const PUBLICLY_KNOWN_MASTER_KEY_SHA256 = new Set(["88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"]);
/** Model names in the per-group list that mean every model (auth_checks.py check_model_access_helper). */
const ALL_MODELS = new Set(["*", "all-proxy-models"]);
/**
 * Provider hosts from Supermemory's router documentation and the path each needs as LiteLLM's api_base
 * (LiteLLM's OpenAI client appends /chat/completions or /responses to it; its Anthropic client appends
 * /v1/messages unless the URL already ends with it).
 */
const KNOWN_PROVIDER_PATHS: Record<string, string> = {
  "api.openai.com": "/v1",
  "api.anthropic.com": "",
  "generativelanguage.googleapis.com": "/v1beta/openai",
  "api.groq.com": "/openai/v1",
  "api.deepinfra.com": "/v1/openai",
  "openrouter.ai": "/api/v1",
};
/** LiteLLM providers that speak the OpenAI API to api_base (Supermemory's router documents OpenAI-compatible ones). */
const OPENAI_LIKE = new Set(["openai", "text-completion-openai", "openai_like", "hosted_vllm", "groq", "deepinfra", "openrouter", "gemini"]);

const ENV_REF = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/;

/**
 * Parses the shared YAML as LiteLLM does (PyYAML, YAML 1.1): unquoted yes/no/on/off are booleans there, and
 * a quoted "true" stays a string, which LiteLLM does not take as true. Give analyzeChain this document.
 * @throws on invalid YAML (memproxy's own loader reports that first).
 */
export function parseLitellmYaml(text: string): Record<string, unknown> {
  return asMapping(parse(text, { version: "1.1" }));
}

/**
 * parseLitellmYaml's reading from the syntax tree memproxy's own reading of `text` was composed from (config.ts).
 * @returns undefined when LiteLLM's reading fails (memproxy's own loader reports invalid YAML).
 */
export function litellmView(tokens: readonly CST.Token[], text: string): Record<string, unknown> | undefined {
  const [doc] = new Composer({ version: "1.1" }).compose(tokens, true, text.length);
  if (!doc || doc.errors.length) return undefined;
  try {
    return asMapping(doc.toJS());
  } catch {
    return undefined;
  }
}

function asMapping(doc: unknown): Record<string, unknown> {
  return doc && typeof doc === "object" && !Array.isArray(doc) ? (doc as Record<string, unknown>) : {};
}

/**
 * Analyses the LiteLLM side of the shared config.
 * @param doc the whole parsed YAML document (best parsed with parseLitellmYaml).
 * @param env the environment LiteLLM runs with (for os.environ/ references and LITELLM_MASTER_KEY).
 * @param options whether `env` really is LiteLLM's.
 * @returns the report; `ok` is false when something in the file would stop memory from working.
 */
export function analyzeChain(doc: Record<string, unknown>, env: Record<string, string | undefined>, options: ChainOptions = {}): ChainReport {
  const envSure = options.envIsLitellms ?? true;
  const problems: ChainProblem[] = [];
  const general = record(doc.general_settings);
  const settings = record(doc.litellm_settings);
  const entries = Array.isArray(doc.model_list) ? doc.model_list : [];

  const forwarding = forwardingRule(general, settings, problems);
  const models: ModelReport[] = [];
  entries.forEach((raw, i) => {
    const m = analyzeModel(record(raw), `model_list[${i}]`, forwarding, env, envSure, problems);
    if (m) models.push(m);
  });
  if (!models.length) {
    problems.push({
      code: "no_models",
      severity: "error",
      message: "model_list has no models: LiteLLM has nothing to send requests to",
      fix: "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      model: openai/gpt-4o\n      api_base: https://api.supermemory.ai/v3/https://api.openai.com/v1\n      api_key: os.environ/OPENAI_API_KEY\n      extra_headers:\n        x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY",
    });
  }

  const names = [...new Set(models.map((m) => m.model_name))];
  const without = names.filter((n) => models.some((m) => m.model_name === n && !m.forwards_id));
  const state: ForwardingState = !names.length ? (forwarding.all ? "on" : "off") : !without.length ? "on" : without.length === names.length ? "off" : "partial";
  if (state === "off" && !problems.some((p) => p.code === "forwarding_not_boolean")) {
    problems.push({
      code: "forwarding_off",
      severity: "error",
      message: "LiteLLM does not forward client headers to the provider, so x-sm-user-id never reaches Supermemory",
      fix: "general_settings:\n  forward_client_headers_to_llm_api: true",
    });
  } else if (state === "partial") {
    const listed = forwarding.list ?? [];
    problems.push({
      code: "forwarding_partial",
      severity: "error",
      message: `LiteLLM forwards x-sm-user-id only for some models; it drops it for ${without.join(", ")}`,
      fix:
        "general_settings:\n  forward_client_headers_to_llm_api: true\n" +
        `or name every model:\nlitellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [${[...listed, ...without].map(flowItem).join(", ")}]`,
    });
  }

  const masterKey = masterKeyVerdict(general, env, envSure, problems);
  return {
    memory_id_forwarding: state,
    models_without_forwarding: without,
    models,
    master_key: masterKey,
    problems,
    ok: !problems.some((p) => p.severity === "error"),
  };
}

/** Which model names LiteLLM forwards client headers for. */
interface ForwardingRule {
  all: boolean;
  /** The per-group list, when that form decides. */
  list?: string[];
}

function forwardingRule(general: Record<string, unknown>, settings: Record<string, unknown>, problems: ChainProblem[]): ForwardingRule {
  const global = general.forward_client_headers_to_llm_api;
  // litellm_pre_call_utils.py add_litellm_data_for_backend_llm_call: `... is True`, nothing else counts.
  if (global === true) return { all: true };
  if (global !== undefined && global !== null && global !== false) {
    problems.push({
      code: "forwarding_not_boolean",
      severity: "error",
      message: `general_settings.forward_client_headers_to_llm_api is ${JSON.stringify(global)}, not the boolean true: LiteLLM forwards nothing`,
      fix: "general_settings:\n  forward_client_headers_to_llm_api: true        # no quotes",
    });
  }
  if (settings.forward_client_headers_to_llm_api !== undefined) {
    problems.push({
      code: "forwarding_misplaced",
      severity: "warning",
      message: "litellm_settings.forward_client_headers_to_llm_api is not read by LiteLLM (it belongs under general_settings)",
      fix: "general_settings:\n  forward_client_headers_to_llm_api: true",
    });
  }
  if (general.model_group_settings !== undefined) {
    problems.push({
      code: "forwarding_misplaced",
      severity: "warning",
      message: "general_settings.model_group_settings is not read by LiteLLM (it belongs under litellm_settings)",
      fix: "litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [<model names>]",
    });
  }
  const groups = settings.model_group_settings;
  if (groups === undefined || groups === null) return { all: false };
  const list = record(groups).forward_client_headers_to_llm_api;
  if (list === undefined || list === null) return { all: false };
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
    problems.push({
      code: "model_group_settings_invalid",
      severity: "error",
      message: `litellm_settings.model_group_settings.forward_client_headers_to_llm_api must be a list of model names, got ${JSON.stringify(list)}`,
      fix: "litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [gpt-4o, claude-*]",
    });
    return { all: false };
  }
  if (!list.length) {
    // check_model_access_helper treats an empty list as every model; say it explicitly instead.
    problems.push({
      code: "forwarding_empty_list",
      severity: "warning",
      message: "litellm_settings.model_group_settings.forward_client_headers_to_llm_api is an empty list: LiteLLM 1.108.7 takes that as every model, which may change",
      fix: "general_settings:\n  forward_client_headers_to_llm_api: true",
    });
    return { all: true };
  }
  return { all: list.some((x) => ALL_MODELS.has(x)), list };
}

/**
 * Whether the per-group list covers a model name the way LiteLLM's check_model_access_helper matches the
 * requested name: exactly, through an access group, or a `*` pattern (^pattern$ with * as .*). A provider
 * pattern such as `openai/*` matches only names LiteLLM recognises as that provider's own models, so it is
 * counted only when model_name is the provider's model name itself (gpt-4o for openai/gpt-4o).
 */
function listCovers(list: string[], name: string, litellmModel: string | null, accessGroups: string[]): boolean {
  for (const item of list) {
    if (ALL_MODELS.has(item) || item === name || accessGroups.includes(item)) return true;
    if (!item.includes("*")) continue;
    if (wildcard(item, name)) return true;
    const slash = litellmModel?.indexOf("/") ?? -1;
    if (litellmModel && slash > 0 && litellmModel.slice(slash + 1) === name && wildcard(item, litellmModel)) return true;
  }
  return false;
}

function wildcard(pattern: string, value: string): boolean {
  try {
    return new RegExp(`^${pattern.replaceAll("*", ".*")}$`).test(value);
  } catch {
    return false;
  }
}

function analyzeModel(
  entry: Record<string, unknown>,
  where: string,
  forwarding: ForwardingRule,
  env: Record<string, string | undefined>,
  envSure: boolean,
  problems: ChainProblem[],
): ModelReport | undefined {
  if (typeof entry.model_name !== "string") return undefined;
  const name = entry.model_name;
  const params = record(entry.litellm_params);
  const litellmModel = typeof params.model === "string" ? params.model : null;
  const provider =
    typeof params.custom_llm_provider === "string" ? params.custom_llm_provider : litellmModel?.includes("/") ? litellmModel.slice(0, litellmModel.indexOf("/")) : null;
  const accessGroups = record(entry.model_info).access_groups;
  const forwardsId = forwarding.all || (forwarding.list ? listCovers(forwarding.list, name, litellmModel, Array.isArray(accessGroups) ? accessGroups.map(String) : []) : false);
  const at = `${where} (${name})`;
  const report: ModelReport = {
    where,
    model_name: name,
    provider,
    api_base: null,
    via_router: false,
    provider_url: null,
    provider_url_ok: false,
    forwards_id: forwardsId,
    supermemory_key: "missing",
  };

  const base = resolve(params.api_base, env);
  const example = exampleProviderUrl(provider);
  if (base.kind === "unset") {
    problems.push({
      code: "api_base_env_unset",
      severity: envSure ? "error" : "warning",
      message: `${at}: litellm_params.api_base reads ${base.variable}, which is not set${envSure ? "" : " in memproxy's environment"}`,
      fix: `export ${base.variable}=${SUPERMEMORY_ROUTER}${example}`,
      model: name,
    });
  } else if (base.kind === "none") {
    problems.push({
      code: "api_base_missing",
      severity: "error",
      message: `${at}: no litellm_params.api_base, so LiteLLM calls the provider directly and Supermemory never sees the request`,
      fix: modelFix(name, `api_base: ${SUPERMEMORY_ROUTER}${example}`),
      model: name,
    });
  } else {
    report.api_base = withoutUserinfo(base.value);
    const split = routerParts(base.value);
    if (!split) {
      problems.push({
        code: "not_via_router",
        severity: "error",
        message: `${at}: api_base ${report.api_base} does not go through Supermemory's Memory Router`,
        fix: modelFix(name, `api_base: ${SUPERMEMORY_ROUTER}${providerUrlGuess(base.value) ?? example}`),
        model: name,
      });
    } else {
      report.via_router = true;
      report.provider_url = withoutUserinfo(split.provider);
      if (split.router !== SUPERMEMORY_ROUTER) {
        problems.push({
          code: "router_host",
          severity: "warning",
          message: `${at}: the router is ${withoutUserinfo(split.router)}, not Supermemory's ${SUPERMEMORY_ROUTER} (fine for a self-hosted Supermemory)`,
          fix: modelFix(name, `api_base: ${SUPERMEMORY_ROUTER}${report.provider_url}`),
          model: name,
        });
      }
      const verdict = providerUrlVerdict(provider, split.provider);
      report.provider_url_ok = verdict.ok;
      if (verdict.problem) {
        problems.push({
          code: verdict.untested ? "provider_untested" : "provider_url",
          severity: verdict.ok ? "warning" : "error",
          message: `${at}: ${verdict.problem}`,
          fix: verdict.fix ? modelFix(name, `api_base: ${split.router}${verdict.fix}`) : "use an openai/ model with the provider's OpenAI-compatible URL, or anthropic/",
          model: name,
        });
      }
    }
  }

  report.supermemory_key = supermemoryKey(params, env, at, name, envSure, problems);
  return report;
}

type Resolved = { kind: "value"; value: string } | { kind: "none" } | { kind: "unset"; variable: string };

/** A string setting with LiteLLM's `os.environ/NAME` resolved. */
function resolve(value: unknown, env: Record<string, string | undefined>): Resolved {
  if (typeof value !== "string" || !value.trim()) return { kind: "none" };
  const ref = ENV_REF.exec(value.trim());
  if (!ref) return { kind: "value", value: value.trim() };
  const got = env[ref[1]!];
  return got && got.trim() ? { kind: "value", value: got.trim() } : { kind: "unset", variable: ref[1]! };
}

/** Splits <scheme>://<host>/v3/<provider URL> into the router's base (ending in /v3/) and the provider URL. */
function routerParts(apiBase: string): { router: string; provider: string } | undefined {
  const m = /^(https?:\/\/[^/?#]+\/v3\/)(https?:\/\/.+)$/.exec(apiBase);
  return m ? { router: m[1]!, provider: m[2]! } : undefined;
}

/** The provider URL an api_base that skips the router points at (e.g. https://api.openai.com/v1), if it is one. */
function providerUrlGuess(apiBase: string): string | undefined {
  try {
    const u = new URL(apiBase);
    return KNOWN_PROVIDER_PATHS[u.hostname] !== undefined ? `${u.protocol}//${u.host}${KNOWN_PROVIDER_PATHS[u.hostname]}` : undefined;
  } catch {
    return undefined;
  }
}

function exampleProviderUrl(provider: string | null): string {
  return provider === "anthropic" ? "https://api.anthropic.com" : "https://api.openai.com/v1";
}

/** Whether the provider URL inside the router URL is what LiteLLM's client for `provider` needs. */
function providerUrlVerdict(provider: string | null, providerUrl: string): { ok: boolean; problem?: string; fix?: string; untested?: boolean } {
  let u: URL;
  try {
    u = new URL(providerUrl);
  } catch {
    return { ok: false, problem: `the provider URL ${providerUrl} inside api_base is not a URL` };
  }
  const origin = `${u.protocol}//${u.host}`;
  const path = u.pathname.replace(/\/+$/, "");
  const known = KNOWN_PROVIDER_PATHS[u.hostname];
  if (provider === "anthropic") {
    // LiteLLM appends /v1/messages unless the URL ends with it: .../v1 would become .../v1/v1/messages.
    if (path.endsWith("/v1/messages")) return { ok: true };
    if (path === "") {
      return providerUrl.endsWith("/")
        ? { ok: true, problem: `the provider URL ${providerUrl} ends with a slash: LiteLLM then calls ${origin}//v1/messages`, fix: origin }
        : { ok: true };
    }
    if (path.endsWith("/v1")) {
      return { ok: false, problem: `the anthropic provider URL ${providerUrl} ends with /v1: LiteLLM appends /v1/messages itself and would call ${origin}${path}/v1/messages`, fix: `${origin}${path.slice(0, -3)}` };
    }
    if (known !== undefined) return { ok: false, problem: `the anthropic provider URL should be ${origin}, not ${providerUrl}`, fix: origin };
    return { ok: true };
  }
  if (provider !== null && OPENAI_LIKE.has(provider)) {
    if (known !== undefined) {
      return path === known ? { ok: true } : { ok: false, problem: `the provider URL for ${u.hostname} should be ${origin}${known}, not ${providerUrl}`, fix: `${origin}${known}` };
    }
    if (path === "") return { ok: false, problem: `the OpenAI-compatible provider URL ${providerUrl} has no path: it usually ends with /v1`, fix: `${origin}/v1` };
    return { ok: true };
  }
  return {
    ok: true,
    untested: true,
    problem: `provider ${provider ?? "(none)"} through Supermemory's router is not documented (the router takes OpenAI-compatible APIs and Anthropic's)`,
  };
}

function supermemoryKey(
  params: Record<string, unknown>,
  env: Record<string, string | undefined>,
  at: string,
  name: string,
  envSure: boolean,
  problems: ChainProblem[],
): ModelReport["supermemory_key"] {
  let value: unknown;
  for (const field of ["extra_headers", "headers"]) {
    for (const [k, v] of Object.entries(record(params[field]))) if (k.toLowerCase() === SUPERMEMORY_KEY_HEADER) value = v;
  }
  const resolved = resolve(value, env);
  if (resolved.kind === "none") {
    problems.push({
      code: "supermemory_key_missing",
      severity: "error",
      message: `${at}: no ${SUPERMEMORY_KEY_HEADER} in litellm_params.extra_headers, so Supermemory's router has no key and memory is off`,
      fix: modelFix(name, `extra_headers:\n  ${SUPERMEMORY_KEY_HEADER}: os.environ/SUPERMEMORY_API_KEY`),
      model: name,
    });
    return "missing";
  }
  if (resolved.kind === "unset") {
    problems.push({
      code: "supermemory_key_env_unset",
      severity: envSure ? "error" : "warning",
      message: `${at}: ${SUPERMEMORY_KEY_HEADER} reads ${resolved.variable}, which is not set${envSure ? "" : " in memproxy's environment (it must be set where LiteLLM runs)"}`,
      fix: `export ${resolved.variable}=<your Supermemory API key>      # a service: put it in memproxy.env`,
      model: name,
    });
    return "env-unset";
  }
  if (!ENV_REF.test(String(value).trim())) {
    problems.push({
      code: "supermemory_key_in_file",
      severity: "warning",
      message: `${at}: the Supermemory key is written in the file; keep it in the environment`,
      fix: modelFix(name, `extra_headers:\n  ${SUPERMEMORY_KEY_HEADER}: os.environ/SUPERMEMORY_API_KEY`),
      model: name,
    });
    return "in-file";
  }
  return "env";
}

/** LiteLLM's start-up verdict on its master key (proxy_server.py load_config, master_key_boot_check.py). */
function masterKeyVerdict(
  general: Record<string, unknown>,
  env: Record<string, string | undefined>,
  envSure: boolean,
  problems: ChainProblem[],
): ChainReport["master_key"] {
  const configured = general.master_key;
  const fromFile = typeof configured === "string" ? configured : undefined;
  const ref = fromFile !== undefined ? ENV_REF.exec(fromFile.trim()) : null;
  const key = litellmMasterKey({ general_settings: general }, env);
  const variable = ref ? ref[1]! : "LITELLM_MASTER_KEY";
  const weak = key !== undefined && key.trim() !== "" && PUBLICLY_KNOWN_MASTER_KEY_SHA256.has(createHash("sha256").update(key.trim()).digest("hex"));
  const missing = key === undefined || key.trim() === "";
  const override = general.dangerously_permit_weak_or_unset_master_key === true || /^(true|1)$/i.test(env.LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY ?? "");
  const exportKey = (name: string) => `export ${name}="sk-$(openssl rand -hex 32)"      # a service: put it in memproxy.env`;
  // A file that reads the key from a variable needs only the variable set; otherwise, the line and the variable.
  const fix = ref ? exportKey(variable) : `general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n${exportKey("LITELLM_MASTER_KEY")}`;
  if (fromFile !== undefined && !ref && !missing) {
    problems.push({ code: "master_key_in_file", severity: "warning", message: "general_settings.master_key is written in the file; keep it in the environment", fix });
  }
  if ((missing || weak) && override) return "allowed-weak";
  if (missing) {
    problems.push({
      code: "master_key_missing",
      severity: envSure || !ref ? "error" : "warning",
      message: `LiteLLM has no master key (${ref || fromFile === undefined ? `${variable} is not set` : "general_settings.master_key is empty"}) and refuses to start`,
      fix,
    });
    return "missing";
  }
  if (weak) {
    problems.push({ code: "master_key_weak", severity: "error", message: "LiteLLM's master key is a publicly known default (sk-1234): LiteLLM refuses to start", fix });
    return "weak";
  }
  return "ok";
}

/** Where LiteLLM's config is: memproxy's own file (its text, and LiteLLM's reading of it), or memproxy.litellm.config. */
export interface LitellmSource {
  text: string;
  litellmDocument?: Readonly<Record<string, unknown>>;
  litellm: { config?: string };
}

/**
 * The config LiteLLM reads, as LiteLLM reads it: the file memproxy.litellm.config names, else memproxy's own.
 * @param readText reads memproxy.litellm.config.
 * @throws when that file cannot be read, or is not YAML.
 */
export function litellmDocumentOf(config: LitellmSource, readText: (path: string) => string): Readonly<Record<string, unknown>> {
  if (config.litellm.config !== undefined) return parseLitellmYaml(readText(config.litellm.config));
  return config.litellmDocument ?? parseLitellmYaml(config.text);
}

/**
 * The LiteLLM side of memproxy's config, when memproxy can know it: the file LiteLLM reads is memproxy's own
 * (or memproxy.litellm.config), and it has LiteLLM's sections. Undefined when LiteLLM's config is elsewhere
 * (the embedded default config, or a file without model_list and general_settings).
 * @param config memproxy's loaded configuration: LiteLLM's reading of it (config.ts litellmDocument), or where
 *   LiteLLM's own file is.
 * @param readText reads memproxy.litellm.config when it names another file.
 */
export function chainOf(
  config: LitellmSource & { litellm: { spawn: boolean } },
  env: Record<string, string | undefined>,
  readText: (path: string) => string,
): ChainReport | undefined {
  if (config.litellm.config === undefined && !config.litellmDocument) return undefined;
  let doc: Readonly<Record<string, unknown>>;
  try {
    doc = litellmDocumentOf(config, readText);
  } catch {
    return undefined;
  }
  if (doc.model_list === undefined && doc.general_settings === undefined) return undefined;
  return analyzeChain(doc, env, { envIsLitellms: config.litellm.spawn });
}

/**
 * Whether memproxy's own reading of the file (YAML 1.2) can hold LiteLLM's sections: top-level keys read the same
 * under YAML 1.1, except that a merge key (<<) there can bring them in.
 */
export function hasLitellmSections(document: Readonly<Record<string, unknown>>): boolean {
  return document.model_list !== undefined || document.general_settings !== undefined || "<<" in document;
}

/**
 * The master key LiteLLM will use: general_settings.master_key (with os.environ/NAME resolved), else
 * LITELLM_MASTER_KEY (proxy_server.py load_config).
 */
export function litellmMasterKey(doc: Record<string, unknown>, env: Record<string, string | undefined>): string | undefined {
  const configured = record(doc.general_settings).master_key;
  if (typeof configured !== "string") return env.LITELLM_MASTER_KEY;
  const ref = ENV_REF.exec(configured.trim());
  return ref ? env[ref[1]!] : configured;
}

/**
 * The problems as lines for a log or `memproxy check`: "<source>: <message>; add:" followed by the fix, indented.
 * @param source the config file name, as in memproxy's other messages.
 */
export function chainProblemLines(report: ChainReport, source: string): string[] {
  return report.problems.map(
    (p) => `${source}: ${p.severity === "error" ? "" : "note: "}${p.message}. Fix:\n${p.fix.split("\n").map((l) => `    ${l}`).join("\n")}`,
  );
}

/** The lines to set in one model's litellm_params, as a model_list entry. */
function modelFix(name: string, params: string): string {
  return `model_list:\n  - model_name: ${flowItem(name)}\n    litellm_params:\n${params.split("\n").map((l) => `      ${l}`).join("\n")}`;
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

/** A model name in a YAML flow list, quoted when YAML would read it otherwise. */
function flowItem(name: string): string {
  return /^[A-Za-z0-9_.\-/*][A-Za-z0-9_.\-/*:]*$/.test(name) && !name.startsWith("*") ? name : JSON.stringify(name);
}

function withoutUserinfo(url: string): string {
  return url.replace(/^(https?:\/\/)[^/@]*@/, "$1");
}
