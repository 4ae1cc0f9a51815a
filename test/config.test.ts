import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfig, MAX_CONFIG_BYTES, parseConfig, reconcile } from "../src/config.ts";
import { compileRouter } from "../src/router.ts";
import { aliasBomb } from "./support/files.ts";
import { tempDir } from "./support/process.ts";
import { headerMap } from "../src/http.ts";
import { DESIGN_ROUTING, DESIGN_RULES } from "./support/design-config.ts";

const problems = (yaml: string, env: Record<string, string> = {}) => {
  try {
    parseConfig(yaml, "config.yaml", env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error("expected a ConfigError");
};

describe("the original design's config", () => {
  test("loads unchanged, next to LiteLLM's own keys", () => {
    const c = parseConfig(
      `
model_list:
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY_THAT_IS_NOT_SET
general_settings:
  master_key: sk-1234
  forward_client_headers_to_llm_api: true
litellm_settings:
  set_verbose: true
router_settings:
  routing_strategy: simple-shuffle
litellm_backend_url: "http://localhost:8765"
${DESIGN_ROUTING}`,
      "config.yaml",
      {},
    );
    expect(c.backends).toEqual(["http://localhost:8765"]);
    expect(c.routing.header_patterns).toEqual(DESIGN_RULES);
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 8764, idle_timeout: 10_000 });
  });

  test("an empty file means every default", () => {
    const c = parseConfig("", "empty.yaml", {});
    expect(c.routing).toEqual({
      custom_header: "x-memory-user-id",
      header_patterns: [],
      default_user_id: "default-dev",
      builtin_rules: true,
      derive_from_user_agent: true,
      generic_user_agents: [],
    });
    expect(c.backends).toEqual(["http://127.0.0.1:8765"]);
    expect(c.forward.user_id_header).toBe("x-sm-user-id");
    expect(c.forward.first_byte_timeout).toBe(600_000);
    expect(c.forward.keepalive_limit).toBe(64);
    expect(c.forward.keepalive_wait).toBe(20);
  });
});

describe("errors name the file, the path and the problem", () => {
  test("an invalid regular expression", () => {
    const p = problems(`
user_id_mappings:
  header_patterns:
    - {pattern: "a", user_id: a}
    - {pattern: "b", user_id: b}
    - {pattern: "(", user_id: c}
`);
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(/^config\.yaml: user_id_mappings\.header_patterns\[2\]\.pattern: invalid regular expression: /);
  });

  test("every problem is listed, not only the first", () => {
    const p = problems(`
user_id_mappings:
  custom_header: "bad header"
  default_user_id: "has space"
  header_patterns:
    - {pattern: "x", user_id: x, extra: 1}
litellm_backend_url: "ftp://nope"
memproxy:
  listen: {port: 70000}
  forward: {first_byte_timeout: "soon", keepalive_limit: 65, keepalive_wait: 2s}
  typo_section: {}
`);
    expect(p).toEqual([
      expect.stringMatching(/^config\.yaml: user_id_mappings\.custom_header: not a valid HTTP header name/),
      expect.stringMatching(/^config\.yaml: user_id_mappings\.header_patterns\[0\]\.extra: unknown setting "extra"/),
      expect.stringMatching(/^config\.yaml: user_id_mappings\.default_user_id: user id "has space" must be 1-100 characters of A-Z a-z 0-9 _ : -/),
      expect.stringMatching(/^config\.yaml: litellm_backend_url: expected an http:\/\/ or https:\/\/ URL without query or fragment, got "ftp:\/\/nope"$/),
      expect.stringMatching(/^config\.yaml: memproxy\.listen\.port: must be at most 65535/),
      expect.stringMatching(/^config\.yaml: memproxy\.forward\.first_byte_timeout: expected a duration/),
      expect.stringMatching(/^config\.yaml: memproxy\.forward\.keepalive_limit: must be at most 64, got 65/),
      expect.stringMatching(/^config\.yaml: memproxy\.forward\.keepalive_wait: must be at most 1s/),
      expect.stringMatching(/^config\.yaml: memproxy\.typo_section: unknown setting "typo_section"/),
    ]);
  });

  test("a refused backend URL is shown with its password hidden, and says why it was refused", () => {
    expect(problems('litellm_backend_url: "http://user:hunter2@127.0.0.1:4000/?x=1"\n')).toEqual([
      'config.yaml: litellm_backend_url: expected an http:// or https:// URL without query or fragment, got "http://user:[redacted]@127.0.0.1:4000/?x=1"',
    ]);
    expect(problems('litellm_backend_url: ["http://127.0.0.1:4000", "http://user:hunter2@127.0.0.1:4001/#f"]\n')).toEqual([
      'config.yaml: litellm_backend_url[1]: expected an http:// or https:// URL without query or fragment, got "http://user:[redacted]@127.0.0.1:4001/#f"',
    ]);
    // Neither a URL nor a list of them: the whole value is shown, URLs in it still hidden.
    expect(problems('litellm_backend_url: ["http://user:hunter2@127.0.0.1:4000", 5]\n')).toEqual([
      'config.yaml: litellm_backend_url: expected a URL or a list of URLs, got ["http://user:[redacted]@127.0.0.1:4000",5]',
    ]);
    // A bare ? or # counts too: it would end up in every forwarded URL.
    for (const url of ["http://127.0.0.1:4000/?", "http://127.0.0.1:4000#"]) {
      expect(problems(`litellm_backend_url: "${url}"\n`)).toEqual([`config.yaml: litellm_backend_url: expected an http:// or https:// URL without query or fragment, got "${url}"`]);
    }
    // Trailing slashes are dropped from accepted URLs.
    expect(parseConfig('litellm_backend_url: ["http://127.0.0.1:4000/", "http://127.0.0.1:4001//"]\n', "c.yaml", {}).backends).toEqual(["http://127.0.0.1:4000", "http://127.0.0.1:4001"]);
  });

  test("broken YAML", () => {
    expect(problems("user_id_mappings: [\n")[0]).toMatch(/^config\.yaml: invalid YAML: /);
    expect(problems("- a\n- b\n")[0]).toBe("config.yaml: (top level): expected a mapping of settings");
  });

  test("a YAML error says where it is; a second document is refused", () => {
    expect(problems("memproxy:\n  listen: {}\nmemproxy: {}\n")).toEqual(["config.yaml: invalid YAML: Map keys must be unique at line 3, column 1:"]);
    expect(problems("memproxy: {}\n---\nmodel_list: []\n")).toEqual([
      "config.yaml: invalid YAML: Source contains multiple documents; please use YAML.parseAllDocuments() at line 2, column 1:",
    ]);
  });

  test("the file as LiteLLM reads it comes with the config when it has LiteLLM's sections", () => {
    const shared = parseConfig("litellm_settings: {drop_params: yes}\ngeneral_settings: {master_key: sk-x}\n", "config.yaml", {});
    expect(shared.document.litellm_settings).toEqual({ drop_params: "yes" }); // YAML 1.2, as memproxy reads it
    expect(shared.litellmDocument?.litellm_settings).toEqual({ drop_params: true }); // YAML 1.1, as PyYAML reads it
    expect(parseConfig("litellm_backend_url: http://127.0.0.1:8765\n", "config.yaml", {}).litellmDocument).toBeUndefined();
  });

  test("a missing file says so and what to do", async () => {
    const err = await loadConfig("/nonexistent/memproxy.yaml").catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toContain("/nonexistent/memproxy.yaml: cannot read config: file not found");
  });
});

describe("environment substitution", () => {
  test("os.environ/NAME and ${NAME} in memproxy's own values", () => {
    const c = parseConfig(
      `
litellm_backend_url: os.environ/BACKEND
user_id_mappings:
  default_user_id: "dev-\${USER_NAME}"
memproxy:
  listen: {port: "\${PORT}", host: "\${HOST:-127.0.0.1}"}
`,
      "c.yaml",
      { BACKEND: "http://10.0.0.5:4000/", USER_NAME: "ana", PORT: "9000" },
    );
    expect(c.backends).toEqual(["http://10.0.0.5:4000"]);
    expect(c.routing.default_user_id).toBe("dev-ana");
    expect(c.listen).toMatchObject({ port: 9000, host: "127.0.0.1" });
  });

  test("a missing variable in memproxy's values is an error naming it, once", () => {
    expect(problems(`memproxy:\n  listen: {port: "\${NOPE_PORT}"}\nlitellm_backend_url: os.environ/NOPE_URL\n`)).toEqual([
      "config.yaml: litellm_backend_url: environment variable NOPE_URL is not set",
      "config.yaml: memproxy.listen.port: environment variable NOPE_PORT is not set",
    ]);
  });

  test("LiteLLM's values are left alone", () => {
    expect(() => parseConfig(`model_list:\n  - litellm_params: {api_key: os.environ/NOPE, x: "\${NOPE}"}\n`, "c.yaml", {})).not.toThrow();
  });
});

describe("the embedded default config", () => {
  test("listens on loopback 8764, forwards to 127.0.0.1:8765, and recognises the real clients", async () => {
    const c = await loadConfig(undefined, {});
    expect(c.listen).toEqual({ host: "127.0.0.1", port: 8764, idle_timeout: 10_000 });
    expect(c.backends).toEqual(["http://127.0.0.1:8765"]);
    const route = compileRouter(c.routing);
    const id = (ua: string, extra: Record<string, string> = {}) => {
      const r = route(headerMap(new Headers({ "user-agent": ua, ...extra })));
      return r.ok ? r.decision.user_id : r.rejection.message;
    };
    expect(id("claude-cli/2.1.197 (external, sdk-cli)")).toBe("claude-cli");
    expect(id("claude-cli/2.1.197 (external, claude-vscode)")).toBe("claude-cli");
    expect(id("Claude Code/1.0")).toBe("claude-cli");
    expect(id("OpenAIClientImpl/Java 2.10.0")).toBe("pycharm-ai");
    expect(id("vscode/1.96.0")).toBe("vscode-copilot");
    expect(id("codex_cli_rs/0.46.0 (Linux; x86_64)")).toBe("codex");
    expect(id("something", { originator: "codex_cli_rs" })).toBe("codex");
    expect(id("OpenAI/Python 1.99.0")).toBe("openai-python");
    expect(id("AsyncOpenAI/Python 1.99.0")).toBe("openai-python");
    expect(id("OpenAI/JS 6.49.0")).toBe("openai-js");
    expect(id("Anthropic/Python 0.70.0")).toBe("anthropic-python");
    expect(id("Anthropic/JS 0.60.0")).toBe("anthropic-js");
    expect(id("curl/8.0")).toBe("default-dev");
  });

  test("config.example.yaml is a valid memproxy config, with every default as the schema has it", async () => {
    const example = await loadConfig(join(import.meta.dir, "..", "config.example.yaml"), {});
    const defaults = parseConfig("", "empty.yaml", {});
    expect(example.warnings).toEqual([]);
    for (const key of ["listen", "forward", "limits", "backendPool", "shutdown", "reload", "logging", "metrics"] as const) {
      expect({ [key]: example[key] }).toEqual({ [key]: defaults[key] });
    }
    expect(example.routing).toMatchObject({ custom_header: "x-memory-user-id", default_user_id: "default-dev", builtin_rules: true, derive_from_user_agent: true });
  });
});

describe("what LiteLLM loads, memproxy loads; what would hang or exhaust it is refused", () => {
  test("a model_list that uses one anchor more than 100 times loads (PyYAML takes it)", () => {
    const models = Array.from({ length: 150 }, (_, i) => `  - model_name: m${i}\n    litellm_params: *shared\n`).join("");
    const c = parseConfig(`shared_params: &shared {model: openai/x, api_base: "http://x"}\nmodel_list:\n${models}litellm_backend_url: http://127.0.0.1:4000\n`, "big.yaml", {});
    expect(c.backends).toEqual(["http://127.0.0.1:4000"]);
    expect((c.document.model_list as unknown[]).length).toBe(150);
  });

  test("aliases that expand exponentially are refused with a clear line", () => {
    expect(problems(aliasBomb())).toEqual([expect.stringMatching(/^config\.yaml: \(top level\): the YAML expands to more than 1000000 values through its aliases/)]);
  });

  test("a file larger than the limit, or a device that never ends, is refused", async () => {
    using dir = tempDir("cfg");
    {
      const big = dir.file("big.yaml");
      writeFileSync(big, `# ${"x".repeat(MAX_CONFIG_BYTES)}\n`);
      expect((await loadConfig(big).catch((e) => e)).message).toContain(`${big}: cannot read config: larger than 4 MiB`);
      expect((await loadConfig("/dev/zero").catch((e) => e)).message).toContain("/dev/zero: cannot read config: larger than 4 MiB");
    }
  });

  test("a missing file suggests config.example.yaml; a folder says so", async () => {
    expect((await loadConfig("/nonexistent/c.yaml").catch((e) => e)).message).toContain("copy config.example.yaml");
    expect((await loadConfig(tmpdir()).catch((e) => e)).message).toContain("it is a directory");
  });
});

describe("near misses of memproxy's own keys are warned about, LiteLLM's keys left alone", () => {
  test("a misspelt memproxy: or user_id_mappings: loads, with a warning naming the right key", () => {
    const c = parseConfig(`memprxy:\n  access: {keys: [aaaaaaaaaaaaaaaaaaaa]}\nuser_id_mapings: {}\nmodel_list: []\ngeneral_settings: {}\nsomething_else: 1\n`, "c.yaml", {});
    expect(c.warnings).toEqual([
      "c.yaml: memprxy: not a setting memproxy knows, and it ignores it; did you mean memproxy?",
      "c.yaml: user_id_mapings: not a setting memproxy knows, and it ignores it; did you mean user_id_mappings?",
    ]);
    expect(c.access.keys).toEqual([]);
  });
});

describe("command-line values are checked by the same schema", () => {
  test("errors name the flag, not the file", () => {
    const err = (() => {
      try {
        parseConfig("", "c.yaml", {}, [
          { path: ["memproxy", "listen", "port"], value: "70000", flag: "--port" },
          { path: ["litellm_backend_url"], value: "ftp://x", flag: "--backend" },
          { path: ["memproxy", "litellm", "port"], value: "abc", flag: "--litellm-port" },
        ]);
      } catch (e) {
        return e as ConfigError;
      }
    })()!;
    expect(err.problems).toEqual([
      "--backend: expected an http:// or https:// URL without query or fragment, got \"ftp://x\"",
      expect.stringMatching(/^--litellm-port: expected a whole number from 1 to 65535, got "abc"/),
      "--port: must be at most 65535, got 70000",
    ]);
  });

  test("values override the file's", () => {
    const c = parseConfig("memproxy:\n  listen: {port: 9000}\n", "c.yaml", {}, [{ path: ["memproxy", "listen", "port"], value: "9100", flag: "--port" }]);
    expect(c.listen.port).toBe(9100);
  });

  test("a spawned LiteLLM's port is the backend unless one is given", () => {
    const spawned = parseConfig("", "c.yaml", {}, [
      { path: ["memproxy", "litellm", "spawn"], value: true, flag: "--spawn-litellm" },
      { path: ["memproxy", "litellm", "port"], value: "9999", flag: "--litellm-port" },
    ]);
    expect(spawned.backends).toEqual(["http://127.0.0.1:9999"]);
  });
});

describe("reconcile: what a running memproxy takes from a reloaded file", () => {
  test("settings that apply at start only keep their running values, each change noted", () => {
    const running = parseConfig("memproxy:\n  listen: {port: 9000}\n", "c.yaml", {});
    const next = parseConfig(
      "memproxy:\n  listen: {port: 9001}\n  logging: {level: debug}\n  metrics: {enabled: false}\n  litellm: {port: 4999}\n  access: {keys: [bbbbbbbbbbbbbbbbbbbb]}\n",
      "c.yaml",
      {},
    );
    const { config, notes } = reconcile(running, next);
    expect(config.listen).toEqual(running.listen);
    expect(config.logging).toEqual(running.logging);
    expect(config.metrics).toEqual(running.metrics);
    expect(config.litellm).toEqual(running.litellm);
    expect(config.access.keys).toEqual(["bbbbbbbbbbbbbbbbbbbb"]);
    expect(notes).toEqual([
      "memproxy.listen: cannot change while running; restart memproxy to apply it",
      "memproxy.litellm: cannot change while running; restart memproxy to apply it",
      "memproxy.logging: cannot change while running; restart memproxy to apply it",
      "memproxy.metrics: cannot change while running; restart memproxy to apply it",
    ]);
  });

  test("an unchanged file notes nothing and changes nothing", () => {
    const text = "memproxy:\n  listen: {port: 9000}\n  logging: {level: debug}\n";
    const running = parseConfig(text, "c.yaml", {});
    const { config, notes } = reconcile(running, parseConfig(text, "c.yaml", {}));
    expect(notes).toEqual([]);
    expect(config).toEqual(running);
  });
});
