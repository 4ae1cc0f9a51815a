// The LiteLLM side of the shared config: forwarding (both forms), the router api_base, Supermemory's key and the
// master key, read the way LiteLLM 1.108.7 reads them. test/e2e/litellm.e2e.test.ts checks the same verdicts
// against the real LiteLLM.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { parseConfig } from "../src/config.ts";
import { analyzeChain, chainOf, chainProblemLines, litellmDocumentOf, parseLitellmYaml, type ChainReport } from "../src/litellm-config.ts";

const EXAMPLE = readFileSync(join(import.meta.dir, "..", "config.example.yaml"), "utf8");
const ENV = { LITELLM_MASTER_KEY: "sk-a-long-random-master-key-0123456789", SUPERMEMORY_API_KEY: "sm_key", OPENAI_API_KEY: "sk-o", ANTHROPIC_API_KEY: "sk-a" };

/** A model entry through the router, as config.example.yaml writes them. */
function model(name: string, litellmModel: string, providerUrl: string, extra: Record<string, unknown> = {}) {
  return {
    model_name: name,
    litellm_params: {
      model: litellmModel,
      api_base: `https://api.supermemory.ai/v3/${providerUrl}`,
      api_key: "os.environ/OPENAI_API_KEY",
      extra_headers: { "x-supermemory-api-key": "os.environ/SUPERMEMORY_API_KEY" },
      ...extra,
    },
  };
}
const GPT = model("gpt-4o", "openai/gpt-4o", "https://api.openai.com/v1");
const CLAUDE = model("claude-*", "anthropic/claude-*", "https://api.anthropic.com");

function doc(parts: { models?: unknown[]; general?: Record<string, unknown>; settings?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    model_list: parts.models ?? [GPT, CLAUDE],
    general_settings: { master_key: "os.environ/LITELLM_MASTER_KEY", ...parts.general },
    ...(parts.settings ? { litellm_settings: parts.settings } : {}),
  };
}
const on = { forward_client_headers_to_llm_api: true };
const codes = (r: ChainReport) => r.problems.map((p) => `${p.severity}:${p.code}`);

/** Merges a problem's YAML fix into the document (mappings merged, everything else replaced). */
function applyFix(d: Record<string, unknown>, fixYaml: string): Record<string, unknown> {
  const merge = (a: any, b: any): any =>
    a && b && typeof a === "object" && typeof b === "object" && !Array.isArray(a) && !Array.isArray(b)
      ? Object.fromEntries([...new Set([...Object.keys(a), ...Object.keys(b)])].map((k) => [k, k in b ? merge(a[k], b[k]) : a[k]]))
      : b;
  return merge(d, parse(fixYaml));
}

describe("config.example.yaml", () => {
  test("as LiteLLM reads it, with the variables set: forwarding on, every model through the router, nothing to fix", () => {
    const r = analyzeChain(parseLitellmYaml(EXAMPLE), ENV);
    expect(r.memory_id_forwarding).toBe("on");
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.master_key).toBe("ok");
    expect(r.models.map((m) => [m.model_name, m.provider, m.via_router, m.provider_url, m.provider_url_ok, m.forwards_id, m.supermemory_key])).toEqual([
      ["gpt-4o", "openai", true, "https://api.openai.com/v1", true, true, "env"],
      ["claude-*", "anthropic", true, "https://api.anthropic.com", true, true, "env"],
    ]);
  });

  test("without its variables: the Supermemory key and the master key are reported, each with the command to set it", () => {
    const r = analyzeChain(parseLitellmYaml(EXAMPLE), {});
    expect(r.ok).toBe(false);
    expect(codes(r)).toEqual(["error:supermemory_key_env_unset", "error:supermemory_key_env_unset", "error:master_key_missing"]);
    expect(r.problems[0]!.message).toBe("model_list[0] (gpt-4o): x-supermemory-api-key reads SUPERMEMORY_API_KEY, which is not set");
    expect(r.problems[0]!.fix).toStartWith("export SUPERMEMORY_API_KEY=");
    expect(r.master_key).toBe("missing");
    // LiteLLM's own advice: the key from the environment, a random value. The file reads it already: only the variable.
    expect(r.problems[2]!.fix).toBe('export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 32)"      # a service: put it in memproxy.env');
    // A file without the line gets the line too; one that reads another variable, that variable.
    const without = analyzeChain(parseLitellmYaml(EXAMPLE.replace(/^ *master_key: .*\n/m, "")), {});
    expect(without.problems.find((p) => p.code === "master_key_missing")!.fix).toBe(
      'general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\nexport LITELLM_MASTER_KEY="sk-$(openssl rand -hex 32)"      # a service: put it in memproxy.env',
    );
    const other = analyzeChain(parseLitellmYaml(EXAMPLE.replace("os.environ/LITELLM_MASTER_KEY", "os.environ/MY_KEY")), {});
    expect(other.problems.find((p) => p.code === "master_key_missing")!.fix).toStartWith("export MY_KEY=");
  });

  test("when memproxy does not start LiteLLM, a variable missing from memproxy's environment is only a warning", () => {
    const r = analyzeChain(parseLitellmYaml(EXAMPLE), {}, { envIsLitellms: false });
    expect(r.ok).toBe(true);
    expect(codes(r)).toEqual(["warning:supermemory_key_env_unset", "warning:supermemory_key_env_unset", "warning:master_key_missing"]);
    expect(r.problems[0]!.message).toContain("it must be set where LiteLLM runs");
  });
});

describe("forwarding of x-sm-user-id", () => {
  test("no setting: off, for every model, with the line to add", () => {
    const r = analyzeChain(doc(), ENV);
    expect(r.memory_id_forwarding).toBe("off");
    expect(r.models_without_forwarding).toEqual(["gpt-4o", "claude-*"]);
    expect(r.ok).toBe(false);
    const p = r.problems.find((x) => x.code === "forwarding_off")!;
    expect(p.severity).toBe("error");
    expect(p.fix).toBe("general_settings:\n  forward_client_headers_to_llm_api: true");
    expect(analyzeChain(applyFix(doc(), p.fix), ENV)).toMatchObject({ memory_id_forwarding: "on", ok: true });
  });

  test("the global setting: on", () => {
    expect(analyzeChain(doc({ general: on }), ENV)).toMatchObject({ memory_id_forwarding: "on", models_without_forwarding: [], ok: true });
  });

  test("only the boolean true counts, as in LiteLLM (`is True`): a quoted \"true\" is off and says why", () => {
    const quoted = parseLitellmYaml('model_list: []\ngeneral_settings:\n  forward_client_headers_to_llm_api: "true"\n');
    const r = analyzeChain({ ...doc(), general_settings: { ...doc().general_settings as object, ...(quoted.general_settings as object) } }, ENV);
    expect(r.memory_id_forwarding).toBe("off");
    expect(codes(r)).toContain("error:forwarding_not_boolean");
    expect(codes(r)).not.toContain("error:forwarding_off");
    expect(r.problems.find((p) => p.code === "forwarding_not_boolean")!.message).toContain('is "true", not the boolean true');
  });

  test("YAML 1.1 as LiteLLM parses it: an unquoted yes is true there", () => {
    const text = "general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n  forward_client_headers_to_llm_api: yes\n";
    const d = parseLitellmYaml(text);
    expect((d.general_settings as any).forward_client_headers_to_llm_api).toBe(true);
    expect(analyzeChain({ ...d, model_list: [GPT] }, ENV).memory_id_forwarding).toBe("on");
  });

  test("per model group: the models listed forward, the others are named, and the fix lists them all", () => {
    const r = analyzeChain(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: ["gpt-4o"] } } }), ENV);
    expect(r.memory_id_forwarding).toBe("partial");
    expect(r.models_without_forwarding).toEqual(["claude-*"]);
    const p = r.problems.find((x) => x.code === "forwarding_partial")!;
    expect(p.message).toContain("it drops it for claude-*");
    expect(p.fix).toContain("forward_client_headers_to_llm_api: true");
    const listFix = p.fix.slice(p.fix.indexOf("litellm_settings:"));
    expect(listFix).toBe("litellm_settings:\n  model_group_settings:\n    forward_client_headers_to_llm_api: [gpt-4o, claude-*]");
    const fixed = applyFix(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: ["gpt-4o"] } } }), listFix);
    expect(analyzeChain(fixed, ENV)).toMatchObject({ memory_id_forwarding: "on", ok: true });
  });

  test("per model group: every model listed, or a pattern covering it, is on; none listed is off", () => {
    const group = (list: unknown) => analyzeChain(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: list } } }), ENV);
    expect(group(["gpt-4o", "claude-*"]).memory_id_forwarding).toBe("on");
    expect(group(["gpt-*", "claude-*"]).memory_id_forwarding).toBe("on");
    expect(group(["*"]).memory_id_forwarding).toBe("on");
    expect(group(["gpt-4o-mini"]).memory_id_forwarding).toBe("off");
    expect(group(["gpt-4o-mini"]).problems.map((p) => p.code)).toContain("forwarding_off");
  });

  test("per model group: `openai/*` covers a model named as the provider's own model, not an alias (seen with LiteLLM 1.108.7)", () => {
    const alias = model("my-gpt", "openai/gpt-4o", "https://api.openai.com/v1");
    const r = analyzeChain(doc({ models: [GPT, alias, CLAUDE], settings: { model_group_settings: { forward_client_headers_to_llm_api: ["openai/*", "anthropic/*"] } } }), ENV);
    expect(r.memory_id_forwarding).toBe("partial");
    expect(r.models_without_forwarding).toEqual(["my-gpt"]);
  });

  test("per model group: an access group of the model counts", () => {
    const grouped = { ...GPT, model_info: { access_groups: ["memory-models"] } };
    const r = analyzeChain(doc({ models: [grouped], settings: { model_group_settings: { forward_client_headers_to_llm_api: ["memory-models"] } } }), ENV);
    expect(r.memory_id_forwarding).toBe("on");
  });

  test("per model group: an empty list is every model in LiteLLM 1.108.7 (on, with a warning to say it explicitly)", () => {
    const r = analyzeChain(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: [] } } }), ENV);
    expect(r.memory_id_forwarding).toBe("on");
    expect(codes(r)).toEqual(["warning:forwarding_empty_list"]);
    expect(r.ok).toBe(true);
  });

  test("per model group: not a list is an error (LiteLLM's ModelGroupSettings takes a list of names)", () => {
    const r = analyzeChain(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: "gpt-4o" } } }), ENV);
    expect(r.memory_id_forwarding).toBe("off");
    expect(codes(r)).toContain("error:model_group_settings_invalid");
  });

  test("settings in the wrong section are not read by LiteLLM: off, with a note saying where they belong", () => {
    const r = analyzeChain({ ...doc({ general: { model_group_settings: { forward_client_headers_to_llm_api: ["gpt-4o", "claude-*"] } } }), litellm_settings: on }, ENV);
    expect(r.memory_id_forwarding).toBe("off");
    expect(codes(r)).toEqual(["warning:forwarding_misplaced", "warning:forwarding_misplaced", "error:forwarding_off"]);
    expect(r.problems[0]!.message).toContain("belongs under general_settings");
    expect(r.problems[1]!.message).toContain("belongs under litellm_settings");
  });

  test("several deployments of one model name: the name is reported once", () => {
    const r = analyzeChain(doc({ models: [GPT, GPT, CLAUDE] }), ENV);
    expect(r.models).toHaveLength(3);
    expect(r.models_without_forwarding).toEqual(["gpt-4o", "claude-*"]);
  });

  test("no models: off and an error saying LiteLLM has nothing to call", () => {
    const r = analyzeChain({ general_settings: { master_key: "os.environ/LITELLM_MASTER_KEY", ...on } }, ENV);
    expect(r.memory_id_forwarding).toBe("on");
    expect(codes(r)).toEqual(["error:no_models"]);
  });
});

describe("api_base through Supermemory's Memory Router", () => {
  const one = (m: unknown, env: Record<string, string | undefined> = ENV) => analyzeChain(doc({ models: [m], general: on }), env);

  test("no api_base: LiteLLM calls the provider directly; the fix gives the router URL for the provider", () => {
    const r = one({ model_name: "claude-x", litellm_params: { model: "anthropic/claude-x", extra_headers: { "x-supermemory-api-key": "os.environ/SUPERMEMORY_API_KEY" } } });
    expect(codes(r)).toEqual(["error:api_base_missing"]);
    expect(r.problems[0]!.fix).toBe("model_list:\n  - model_name: claude-x\n    litellm_params:\n      api_base: https://api.supermemory.ai/v3/https://api.anthropic.com");
    expect(r.models[0]!.via_router).toBe(false);
  });

  test("a provider URL as api_base: not through the router; the fix wraps that URL", () => {
    const r = one({ ...GPT, litellm_params: { ...GPT.litellm_params, api_base: "https://api.openai.com/v1" } });
    expect(codes(r)).toEqual(["error:not_via_router"]);
    expect(r.problems[0]!.fix).toEndWith("\n      api_base: https://api.supermemory.ai/v3/https://api.openai.com/v1");
  });

  test("anthropic with /v1: LiteLLM would call .../v1/v1/messages", () => {
    const r = one(model("claude-*", "anthropic/claude-*", "https://api.anthropic.com/v1"));
    expect(codes(r)).toEqual(["error:provider_url"]);
    expect(r.problems[0]!.message).toContain("https://api.anthropic.com/v1/v1/messages");
    expect(r.problems[0]!.fix).toBe("model_list:\n  - model_name: claude-*\n    litellm_params:\n      api_base: https://api.supermemory.ai/v3/https://api.anthropic.com");
    expect(r.models[0]!.provider_url_ok).toBe(false);
  });

  test("anthropic ending in /v1/messages is kept by LiteLLM: fine", () => {
    expect(one(model("claude-*", "anthropic/claude-*", "https://api.anthropic.com/v1/messages")).problems).toEqual([]);
  });

  test("openai without /v1, and known OpenAI-compatible hosts with their own paths", () => {
    const bare = one(model("gpt-4o", "openai/gpt-4o", "https://api.openai.com"));
    expect(codes(bare)).toEqual(["error:provider_url"]);
    expect(bare.problems[0]!.fix).toEndWith("\n      api_base: https://api.supermemory.ai/v3/https://api.openai.com/v1");
    expect(one(model("gpt-4o", "openai/gpt-4o", "https://api.openai.com/v1/")).problems).toEqual([]);
    expect(one(model("llama", "openai/llama-3.3-70b", "https://api.groq.com/openai/v1")).problems).toEqual([]);
    expect(codes(one(model("llama", "openai/llama-3.3-70b", "https://api.groq.com/v1")))).toEqual(["error:provider_url"]);
    expect(one(model("gem", "openai/gemini-2.5-pro", "https://generativelanguage.googleapis.com/v1beta/openai")).problems).toEqual([]);
    expect(one(model("local", "openai/qwen", "http://10.0.0.2:8000/v1")).problems).toEqual([]);
  });

  test("a provider the router does not document: a warning, memory may still work", () => {
    const r = one(model("bed", "bedrock/anthropic.claude-3", "https://bedrock-runtime.us-east-1.amazonaws.com"));
    expect(codes(r)).toEqual(["warning:provider_untested"]);
  });

  test("another router host (self-hosted Supermemory, or a test's fake): a warning", () => {
    const r = one({ ...GPT, litellm_params: { ...GPT.litellm_params, api_base: "http://127.0.0.1:9999/v3/https://api.openai.com/v1" } });
    expect(codes(r)).toEqual(["warning:router_host"]);
    expect(r.models[0]).toMatchObject({ via_router: true, provider_url: "https://api.openai.com/v1", provider_url_ok: true });
  });

  test("api_base from the environment is resolved; unset, it is reported", () => {
    const viaEnv = { ...GPT, litellm_params: { ...GPT.litellm_params, api_base: "os.environ/GPT_BASE" } };
    expect(one(viaEnv, { ...ENV, GPT_BASE: "https://api.supermemory.ai/v3/https://api.openai.com/v1" }).problems).toEqual([]);
    const r = one(viaEnv);
    expect(codes(r)).toEqual(["error:api_base_env_unset"]);
    expect(r.problems[0]!.message).toContain("GPT_BASE, which is not set");
  });

  test("a password in api_base never appears in the report", () => {
    const r = one({ ...GPT, litellm_params: { ...GPT.litellm_params, api_base: "https://user:hunter2@proxy.example/v1" } });
    expect(JSON.stringify(r)).not.toContain("hunter2");
  });
});

describe("Supermemory's key", () => {
  const one = (extra_headers: unknown, env: Record<string, string | undefined> = ENV) =>
    analyzeChain(doc({ models: [{ ...GPT, litellm_params: { ...GPT.litellm_params, extra_headers } }], general: on }), env);

  test("missing: an error with the lines to add", () => {
    const r = one(undefined);
    expect(codes(r)).toEqual(["error:supermemory_key_missing"]);
    expect(r.problems[0]!.fix).toBe(
      "model_list:\n  - model_name: gpt-4o\n    litellm_params:\n      extra_headers:\n        x-supermemory-api-key: os.environ/SUPERMEMORY_API_KEY",
    );
    // The fix is YAML that, merged into the model's entry, repairs it.
    const fixed = parse(r.problems[0]!.fix).model_list[0].litellm_params;
    expect(analyzeChain(doc({ models: [{ ...GPT, litellm_params: { ...GPT.litellm_params, ...fixed } }], general: on }), ENV).problems).toEqual([]);
    expect(r.models[0]!.supermemory_key).toBe("missing");
  });

  test("any letter case of the header name; another variable name works when set", () => {
    expect(one({ "X-Supermemory-Api-Key": "os.environ/SM" }, { ...ENV, SM: "k" }).problems).toEqual([]);
    expect(codes(one({ "X-Supermemory-Api-Key": "os.environ/SM" }))).toEqual(["error:supermemory_key_env_unset"]);
  });

  test("written in the file: works, with a warning (and the key itself never in the report)", () => {
    const r = one({ "x-supermemory-api-key": "sm_literal_secret" });
    expect(codes(r)).toEqual(["warning:supermemory_key_in_file"]);
    expect(r.models[0]!.supermemory_key).toBe("in-file");
    expect(JSON.stringify(r)).not.toContain("sm_literal_secret");
  });
});

describe("LiteLLM's master key", () => {
  const key = (general: Record<string, unknown>, env: Record<string, string | undefined>) => analyzeChain(doc({ general: { ...on, ...general } }), { SUPERMEMORY_API_KEY: "k", ...env });

  test("sk-1234 (LiteLLM's publicly known default), from the environment or the file, even with spaces: weak", () => {
    expect(key({}, { LITELLM_MASTER_KEY: "sk-1234" }).master_key).toBe("weak");
    expect(key({}, { LITELLM_MASTER_KEY: " sk-1234 " }).master_key).toBe("weak");
    const inFile = key({ master_key: "sk-1234" }, {});
    expect(inFile.master_key).toBe("weak");
    expect(codes(inFile)).toEqual(["warning:master_key_in_file", "error:master_key_weak"]);
  });

  test("without general_settings.master_key LiteLLM reads LITELLM_MASTER_KEY", () => {
    const d = doc({ general: on });
    delete (d.general_settings as Record<string, unknown>).master_key;
    expect(analyzeChain(d, { ...ENV }).master_key).toBe("ok");
    expect(analyzeChain(d, { SUPERMEMORY_API_KEY: "k" }).master_key).toBe("missing");
  });

  test("empty, or another variable that is not set: missing", () => {
    expect(key({ master_key: "" }, {}).master_key).toBe("missing");
    expect(key({ master_key: "os.environ/MY_KEY" }, { LITELLM_MASTER_KEY: "sk-long-enough-key-123456" }).master_key).toBe("missing");
  });

  test("LiteLLM's override lets a weak key start (reported as such, no error)", () => {
    expect(key({ dangerously_permit_weak_or_unset_master_key: true }, { LITELLM_MASTER_KEY: "sk-1234" }).master_key).toBe("allowed-weak");
    const r = key({}, { LITELLM_MASTER_KEY: "sk-1234", LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY: "true" });
    expect(r.master_key).toBe("allowed-weak");
    expect(r.ok).toBe(true);
  });
});

test("chainProblemLines: one message per problem, naming the file, with its fix indented below", () => {
  const lines = chainProblemLines(analyzeChain(doc(), ENV), "config.yaml");
  expect(lines).toEqual([
    "config.yaml: LiteLLM does not forward client headers to the provider, so x-sm-user-id never reaches Supermemory. Fix:\n" +
      "    general_settings:\n      forward_client_headers_to_llm_api: true",
  ]);
  const warning = chainProblemLines(analyzeChain(doc({ settings: { model_group_settings: { forward_client_headers_to_llm_api: [] } } }), ENV), "c.yaml");
  expect(warning[0]).toStartWith("c.yaml: note: ");
});

describe("chainOf: the report for a loaded config", () => {
  const load = (text: string) => parseConfig(text, "memproxy.yaml", ENV);
  const noFile = () => {
    throw new Error("no other file");
  };

  test("a memproxy-only file has no LiteLLM side to report on", () => {
    expect(chainOf(load("litellm_backend_url: http://127.0.0.1:8765\n"), ENV, noFile)).toBeUndefined();
    expect(chainOf(load(""), ENV, noFile)).toBeUndefined();
  });

  test("the shared file is read as LiteLLM reads it", () => {
    const report = chainOf(load(EXAMPLE), ENV, noFile)!;
    expect(report.memory_id_forwarding).toBe("on");
    expect(report.models.map((m) => m.model_name)).toEqual(analyzeChain(parseLitellmYaml(EXAMPLE), ENV).models.map((m) => m.model_name));
  });

  test("LiteLLM's sections that only a YAML 1.1 merge key brings in are still found", () => {
    // memproxy reads YAML 1.2, where << is an ordinary key; LiteLLM's PyYAML merges it.
    const text = `shared: &litellm\n  model_list:\n    - model_name: gpt-4o\n      litellm_params: {model: openai/gpt-4o}\n<<: *litellm\n`;
    expect(load(text).document.model_list).toBeUndefined();
    const report = chainOf(load(text), ENV, noFile)!;
    expect(report.models.map((m) => m.model_name)).toEqual(["gpt-4o"]);
  });

  test("memproxy.litellm.config names LiteLLM's own file, which is read whatever memproxy's holds", () => {
    const text = "memproxy:\n  litellm:\n    config: /elsewhere/litellm.yaml\n";
    const report = chainOf(load(text), ENV, (path) => (path === "/elsewhere/litellm.yaml" ? EXAMPLE : noFile()))!;
    expect(report.memory_id_forwarding).toBe("on");
  });
});

describe("litellmDocumentOf: the config LiteLLM reads, as it reads it", () => {
  const load = (text: string) => parseConfig(text, "memproxy.yaml", ENV);
  const noFile = (): string => {
    throw new Error("no other file");
  };

  test("memproxy's own file: LiteLLM's reading of it (YAML 1.1), also when it has no LiteLLM section", () => {
    expect(litellmDocumentOf(load("litellm_settings: {drop_params: yes}\n"), noFile).litellm_settings).toEqual({ drop_params: true });
    expect(litellmDocumentOf(load(EXAMPLE), noFile)).toEqual(parseLitellmYaml(EXAMPLE));
  });

  test("memproxy.litellm.config: that file, not memproxy's", () => {
    const config = load("memproxy:\n  litellm:\n    config: /elsewhere/litellm.yaml\nmodel_list: [{model_name: memproxys-own}]\n");
    const read: string[] = [];
    const doc = litellmDocumentOf(config, (path) => (read.push(path), "model_list: []\n"));
    expect(read).toEqual(["/elsewhere/litellm.yaml"]);
    expect(doc).toEqual({ model_list: [] });
  });
});
