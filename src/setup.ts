// `memproxy setup [tool]`: the exact settings that point a known tool at this memproxy, as text. Pure.
//
// The text has a fixed shape that test/e2e/clients.e2e.test.ts applies to the real tools (so what users read is
// what is tested): a line `  export NAME=VALUE` (2 spaces, shell syntax) sets a variable; a line `In PATH:` or
// `In PATH (note):` starts a file whose content is the following lines indented by 4 spaces; everything from the
// line starting `Per-project memory` on is the optional per-project addition, in the same shape. Other lines are
// prose. A value of "$LITELLM_API_KEY" refers to the variable holding the user's LiteLLM key.
import { KNOWN_TOOLS, findTool, type KnownTool } from "./tools.ts";

/** Where this memproxy listens and which header names a memory, from the config. */
export interface SetupContext {
  /** e.g. http://127.0.0.1:8764 (no trailing slash). */
  baseUrl: string;
  /** e.g. x-memory-user-id. */
  customHeader: string;
}

/** An environment value: literal text, or a reference to another variable (rendered "$NAME"). */
type EnvValue = string | { ref: string };

interface Block {
  /** Prose before the assignments and files. */
  text?: string[];
  env?: [string, EnvValue][];
  files?: { path: string; note?: string; content: string }[];
  /** Prose after them. */
  after?: string[];
}

interface Plan extends Block {
  /** Per-project memory; null when the tool cannot send a header. */
  project: Block | null;
}

const KEY: EnvValue = { ref: "LITELLM_API_KEY" };
const PROJECT_ID = "my-project";
const KEY_NOTE = "LITELLM_API_KEY holds your LiteLLM key (its master key or a virtual key); memproxy passes it through.";

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** How each tool is pointed at memproxy. */
function plan(tool: KnownTool, ctx: SetupContext): Plan {
  const base = ctx.baseUrl.replace(/\/+$/, "");
  const v1 = `${base}/v1`;
  const h = ctx.customHeader;
  const headerLine = `${h}: ${PROJECT_ID}`;
  const uiHeader = (where: string): Block => ({ text: [`${where}: add the header ${h} with the value ${PROJECT_ID} (any id of 1-100 letters, digits, _ : -).`] });
  switch (tool.key) {
    case "claude-code":
      return {
        env: [
          ["ANTHROPIC_BASE_URL", base],
          ["ANTHROPIC_AUTH_TOKEN", KEY],
        ],
        project: {
          text: ["Per-project memory: in that project's shell (or direnv's .envrc), send the header with every request:"],
          env: [["ANTHROPIC_CUSTOM_HEADERS", headerLine]],
          after: [`or in the project's .claude/settings.json: {"env": {"ANTHROPIC_CUSTOM_HEADERS": "${headerLine}"}}`],
        },
      };
    case "codex":
      return {
        text: ["Codex's built-in openai provider tries a WebSocket first; a provider of its own talks plain HTTP to memproxy."],
        files: [
          {
            path: "~/.codex/config.toml",
            note: "top-level keys before any [table]; model: a model_name from LiteLLM's model_list",
            content: [
              'model_provider = "memproxy"',
              'model = "gpt-4o"',
              "[model_providers.memproxy]",
              'name = "memproxy"',
              `base_url = "${v1}"`,
              'env_key = "LITELLM_API_KEY"',
              'wire_api = "responses"',
              `env_http_headers = { "${h}" = "MEMORY_USER_ID" }`,
            ].join("\n"),
          },
        ],
        project: {
          text: [`Per-project memory: set MEMORY_USER_ID in that project's shell (or direnv's .envrc); Codex sends it as ${h}:`],
          env: [["MEMORY_USER_ID", PROJECT_ID]],
        },
      };
    case "gemini-cli":
      return {
        env: [
          ["GOOGLE_GEMINI_BASE_URL", base],
          ["GEMINI_API_KEY", KEY],
        ],
        files: [
          {
            path: "~/.gemini/settings.json",
            note: "merge into it; with only GOOGLE_GEMINI_BASE_URL, Gemini CLI 0.61 stops with 'Invalid auth method selected'",
            content: json({ security: { auth: { selectedType: "gemini-api-key" } } }),
          },
        ],
        after: ["LiteLLM must serve Google's generateContent routes for the models Gemini CLI asks for (gemini-*)."],
        project: {
          text: ["Per-project memory: in that project's shell (or direnv's .envrc):"],
          env: [["GEMINI_CLI_CUSTOM_HEADERS", headerLine]],
        },
      };
    case "qwen-code":
      return {
        text: ["Use its OpenAI protocol: through an Anthropic-compatible URL, Qwen Code presents itself as Claude Code."],
        env: [
          ["OPENAI_BASE_URL", v1],
          ["OPENAI_API_KEY", KEY],
          ["OPENAI_MODEL", "gpt-4o"],
        ],
        after: ["(OPENAI_BASE_URL and OPENAI_API_KEY also point the OpenAI SDKs at memproxy; OPENAI_MODEL: a model_name from LiteLLM's model_list.)"],
        project: {
          text: ["Per-project memory:"],
          files: [{ path: ".qwen/settings.json", note: "in the project", content: json({ model: { generationConfig: { customHeaders: { [h]: PROJECT_ID } } } }) }],
        },
      };
    case "opencode":
      return {
        files: [
          {
            path: "~/.config/opencode/opencode.json",
            note: "model: a model_name from LiteLLM's model_list",
            content: json({
              $schema: "https://opencode.ai/config.json",
              provider: {
                memproxy: {
                  npm: "@ai-sdk/openai-compatible",
                  name: "memproxy",
                  options: { baseURL: v1, apiKey: "{env:LITELLM_API_KEY}" },
                  models: { "gpt-4o": {} },
                },
              },
              model: "memproxy/gpt-4o",
            }),
          },
        ],
        project: {
          text: ["Per-project memory: opencode merges the project's opencode.json into the global one:"],
          files: [{ path: "opencode.json", note: "in the project", content: json({ provider: { memproxy: { options: { headers: { [h]: PROJECT_ID } } } } }) }],
        },
      };
    case "jetbrains":
      return {
        text: [
          "JetBrains AI Assistant: Settings | Tools | AI Assistant | Providers & API keys | Third-party AI providers |",
          `OpenAI-compatible: URL ${v1}, API key: your LiteLLM key. It is recognised by the openai-java SDK's`,
          "User-Agent (OpenAIClientImpl/Java); check memproxy's log if your version sends another one.",
          "Your own programs on the openai-java SDK (OpenAIOkHttpClient.fromEnv() and OpenAIOkHttpClientAsync.fromEnv()):",
        ],
        env: [
          ["OPENAI_BASE_URL", v1],
          ["OPENAI_API_KEY", KEY],
        ],
        project: {
          text: [
            "Per-project memory: AI Assistant cannot add headers. In your own openai-java code:",
            `  OpenAIOkHttpClient.builder().fromEnv().putHeader("${h}", "${PROJECT_ID}").build()`,
          ],
        },
      };
    case "zed":
      return {
        text: [`In Zed's settings.json (zed: open settings), then enter your LiteLLM key for the provider in the Agent Panel's settings:`],
        files: [
          {
            path: "~/.config/zed/settings.json",
            note: "merge into it; name: a model_name from LiteLLM's model_list",
            content: json({ language_models: { openai_compatible: { memproxy: { api_url: v1, available_models: [{ name: "gpt-4o", max_tokens: 128000 }] } } } }),
          },
        ],
        project: null,
      };
    case "crush":
      return {
        files: [
          {
            path: "~/.config/crush/crush.json",
            note: "or the project's crush.json; id: a model_name from LiteLLM's model_list",
            content: json({
              providers: { memproxy: { type: "openai-compat", base_url: v1, api_key: "$LITELLM_API_KEY", models: [{ id: "gpt-4o", name: "gpt-4o" }] } },
            }),
          },
        ],
        project: {
          text: ["Per-project memory:"],
          files: [{ path: "crush.json", note: "in the project", content: json({ providers: { memproxy: { extra_headers: { [h]: PROJECT_ID } } } }) }],
        },
      };
    case "roo-code":
    case "kilo-code":
      return {
        text: [`In ${tool.name}'s settings: API Provider "OpenAI Compatible", Base URL ${v1}, API key: your LiteLLM key, and a model from LiteLLM's model_list.`],
        project: uiHeader("Per-project memory: in the same provider settings (a profile per project), under Custom Headers"),
      };
    case "goose":
      return {
        text: ["goose's OpenAI provider (goose configure, or in the environment):"],
        env: [
          ["OPENAI_HOST", base],
          ["OPENAI_BASE_PATH", "v1/chat/completions"],
          ["OPENAI_API_KEY", KEY],
        ],
        project: uiHeader("Per-project memory: goose's OpenAI provider can send extra headers (OPENAI_CUSTOM_HEADERS in goose's configuration)"),
      };
    case "vscode-copilot":
      return {
        text: [
          "GitHub Copilot Chat: model picker | Manage Models | Add Models | OpenAI Compatible (Custom Endpoint), or in settings.json:",
        ],
        files: [
          {
            path: "settings.json",
            note: "VS Code user settings; a model id from LiteLLM's model_list",
            content: json({
              "github.copilot.chat.customOAIModels": {
                "gpt-4o": { name: "gpt-4o (memproxy)", url: `${v1}/chat/completions`, toolCalling: true, vision: false, maxInputTokens: 128000, maxOutputTokens: 16000 },
              },
            }),
          },
        ],
        after: ["API key: your LiteLLM key, when Copilot asks for it."],
        project: uiHeader('Per-project memory: in the workspace\'s settings, give the model "requestHeaders"'),
      };
    case "openai-python":
      return sdk(tool, "python", [
        "import os",
        "from openai import OpenAI            # AsyncOpenAI too",
        `client = OpenAI(base_url="${v1}", api_key=os.environ["LITELLM_API_KEY"])`,
      ], `default_headers={"${h}": "${PROJECT_ID}"}`, v1, "OPENAI");
    case "openai-js":
      return sdk(tool, "js", [
        'import OpenAI from "openai";',
        `const client = new OpenAI({ baseURL: "${v1}", apiKey: process.env.LITELLM_API_KEY });`,
      ], `defaultHeaders: { "${h}": "${PROJECT_ID}" }`, v1, "OPENAI");
    case "openai-go":
      return sdk(tool, "go", [
        `client := openai.NewClient(option.WithBaseURL("${v1}/"), option.WithAPIKey(os.Getenv("LITELLM_API_KEY")))`,
      ], `option.WithHeader("${h}", "${PROJECT_ID}")`, v1, "OPENAI");
    case "anthropic-python":
      return sdk(tool, "python", [
        "import os",
        "from anthropic import Anthropic      # AsyncAnthropic too",
        `client = Anthropic(base_url="${base}", auth_token=os.environ["LITELLM_API_KEY"])`,
      ], `default_headers={"${h}": "${PROJECT_ID}"}`, base, "ANTHROPIC");
    case "anthropic-js":
      return sdk(tool, "js", [
        'import Anthropic from "@anthropic-ai/sdk";',
        `const client = new Anthropic({ baseURL: "${base}", authToken: process.env.LITELLM_API_KEY });`,
      ], `defaultHeaders: { "${h}": "${PROJECT_ID}" }`, base, "ANTHROPIC");
    case "anthropic-go":
      return sdk(tool, "go", [
        `client := anthropic.NewClient(option.WithBaseURL("${base}/"), option.WithAuthToken(os.Getenv("LITELLM_API_KEY")))`,
      ], `option.WithHeader("${h}", "${PROJECT_ID}")`, base, "ANTHROPIC");
    case "cline":
      return {
        text: [
          `In Cline's settings: API Provider "OpenAI Compatible", Base URL ${v1}, API key: your LiteLLM key, a model from LiteLLM's model_list,`,
          `and under Custom Headers: ${h} = ${tool.userId} (without it Cline's requests look like any program on its HTTP library).`,
        ],
        project: uiHeader("Per-project memory: use the project's id instead of cline in that header"),
      };
    case "continue":
      return {
        text: ["In Continue's config.yaml (~/.continue/config.yaml, or the workspace's .continue/), a model through memproxy:"],
        files: [
          {
            path: "~/.continue/config.yaml",
            note: "merge into models:",
            content: [
              "models:",
              "  - name: gpt-4o via memproxy",
              "    provider: openai",
              "    model: gpt-4o",
              `    apiBase: ${v1}`,
              "    apiKey: ${{ secrets.LITELLM_API_KEY }}",
              "    requestOptions:",
              "      headers:",
              `        ${h}: ${tool.userId}`,
            ].join("\n"),
          },
        ],
        after: [`Without the header, Continue's requests look like a generic HTTP library's or the OpenAI SDK's.`],
        project: uiHeader("Per-project memory: in the workspace's .continue/config.yaml, the same model with the project's id in requestOptions.headers"),
      };
    case "aider":
      return {
        text: ["Aider (through LiteLLM's library and the OpenAI Python SDK):"],
        env: [
          ["OPENAI_API_BASE", v1],
          ["OPENAI_API_KEY", KEY],
        ],
        files: [
          {
            path: ".aider.model.settings.yml",
            note: "in your home or the project; name: the model you run aider with",
            content: ["- name: openai/gpt-4o", "  extra_params:", "    extra_headers:", `      ${h}: ${tool.userId}`].join("\n"),
          },
        ],
        after: ["Without the header, Aider's requests look like any OpenAI Python SDK program (openai-python)."],
        project: uiHeader("Per-project memory: in the project's .aider.model.settings.yml, the project's id in extra_headers"),
      };
    case "cursor":
      return {
        text: [
          `Cursor cannot use a memproxy on ${base}: its model requests come from Cursor's servers, not from this machine.`,
          `Only a memproxy on a public HTTPS address would be reachable (Settings | Models | Override OpenAI Base URL),`,
          `and then every request must carry the header ${h}, as Cursor's requests cannot be told apart.`,
        ],
        project: null,
      };
    default:
      return { text: [`${tool.name}: no setup text yet.`], project: null };
  }
}

/** The shape shared by the SDKs: their own base URL variable, or code. */
function sdk(tool: KnownTool, lang: "python" | "js" | "go", code: string[], header: string, url: string, prefix: "OPENAI" | "ANTHROPIC"): Plan {
  const env: [string, EnvValue][] =
    lang === "go" ? [] : [[`${prefix}_BASE_URL`, url], [prefix === "OPENAI" ? "OPENAI_API_KEY" : "ANTHROPIC_AUTH_TOKEN", KEY]];
  return {
    text: lang === "go" ? ["In code:", ...code.map((l) => `    ${l}`)] : ["The SDK reads its base URL from the environment:"],
    env,
    after: lang === "go" ? [] : ["or in code:", ...code.map((l) => `    ${l}`)],
    project: { text: [`Per-project memory: give the client the header, ${header}`] },
  };
}

/** A value as `export` would take it: bare when safe, a variable reference in double quotes, else single-quoted. */
function shellValue(value: EnvValue): string {
  if (typeof value !== "string") return `"$${value.ref}"`;
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

function render(block: Block, out: string[], envHeading: boolean): void {
  for (const line of block.text ?? []) out.push(line);
  if (block.env?.length) {
    if (envHeading) out.push("Set in the environment (your shell profile, or the shell that starts the tool):");
    for (const [name, value] of block.env) out.push(`  export ${name}=${shellValue(value)}`);
  }
  for (const f of block.files ?? []) {
    out.push(f.note ? `In ${f.path} (${f.note}):` : `In ${f.path}:`);
    for (const line of f.content.split("\n")) out.push(`    ${line}`);
  }
  for (const line of block.after ?? []) out.push(line);
}

/**
 * The exact configuration that points a tool at this memproxy: environment variables or a config-file block, and
 * how to give one project its own memory with the custom header.
 * @param toolKey a KnownTool key, e.g. "claude-code".
 * @returns the text, or undefined for an unknown key.
 */
export function setupText(toolKey: string, ctx: SetupContext): string | undefined {
  const tool = findTool(toolKey);
  if (!tool) return undefined;
  const p = plan(tool, ctx);
  const out: string[] = [];
  if (tool.recognisable) {
    const how = tool.rules.map((r) => `${r.header} "${r.pattern}"`).join(" or ");
    out.push(`${tool.name}: memory id ${tool.userId} (recognised by ${how})`);
  } else if (toolKey === "cursor") {
    out.push(`${tool.name}: cannot reach a memproxy on this machine.`);
  } else {
    out.push(`${tool.name}: cannot be told apart from other programs. ${tool.note ?? ""}`.trimEnd());
    out.push(`Its own memory needs the header ${ctx.customHeader}: ${tool.userId}, as shown below.`);
  }
  if (tool.recognisable && tool.note) out.push(`Note: ${tool.note}`);
  out.push("");
  render(p, out, true);
  const usesKey = [...(p.env ?? [])].some(([, v]) => typeof v !== "string") || (p.files ?? []).some((f) => f.content.includes("LITELLM_API_KEY"));
  if (usesKey) out.push(KEY_NOTE);
  out.push("");
  if (p.project) render(p.project, out, false);
  else if (toolKey !== "cursor") out.push(`Per-project memory: not available (${tool.name} cannot add the ${ctx.customHeader} header to its requests).`);
  out.push(`Check what memproxy decides: memproxy explain -H 'User-Agent: <what the tool sends>' (its log shows each request's user_agent and user_id).`);
  return out.join("\n") + "\n";
}

/** The tools `memproxy setup` knows, with their ids, for `memproxy setup` without a tool. */
export function setupList(): string {
  const width = Math.max(...KNOWN_TOOLS.map((t) => t.key.length)) + 2;
  const nameWidth = Math.max(...KNOWN_TOOLS.map((t) => t.name.length)) + 2;
  const lines = [
    "Tools memproxy knows (memproxy setup <tool> prints how to point it at this memproxy):",
    "",
    `  ${"tool".padEnd(width)}${"name".padEnd(nameWidth)}memory id`,
  ];
  for (const t of KNOWN_TOOLS) {
    const id = t.recognisable ? t.userId : `${t.userId} (only with the custom header: cannot be told apart)`;
    lines.push(`  ${t.key.padEnd(width)}${t.name.padEnd(nameWidth)}${id}`);
  }
  lines.push("", "Any other tool gets an id from its User-Agent's first product (MadeUpTool/1.2 gives madeuptool), or default-dev.");
  return lines.join("\n") + "\n";
}
