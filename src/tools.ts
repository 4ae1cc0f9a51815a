// What memproxy knows about AI coding tools: how each is recognised from its request headers, and its memory id.
// Pure data. Every rule is grounded in test/e2e/clients/CLIENTS.md (captured from the real tool, or read in
// its public source, cited there); test/tools.test.ts keeps the two in step.

/** One way to recognise a tool: `pattern` (Python `re.match` syntax, anchored at the start) on one header. */
export interface ToolRule {
  header: string;
  pattern: string;
}

/** A tool memproxy knows. */
export interface KnownTool {
  /** `memproxy setup <key>`, e.g. "claude-code". */
  key: string;
  /** "Claude Code". */
  name: string;
  /** Its memory id (Supermemory's container-tag rule: ^[a-zA-Z0-9_:-]{1,100}$). */
  userId: string;
  /** How it is recognised, most specific first; empty when it cannot be told apart. */
  rules: ToolRule[];
  /** False for tools whose requests look like another program's (SDK-based tools) or never reach memproxy (Cursor). */
  recognisable: boolean;
  /** Why it cannot be told apart, or what to know about its recognition. */
  note?: string;
  /** The real-client test (test/e2e/clients.e2e.test.ts) that proves it, if any. */
  verifiedBy?: string;
  /** The header that names the tool's conversation or session, lower-case, when it sends one. */
  sessionHeader?: string;
}

/** The e2e test name for a tool run for real; clients.e2e.test.ts names its tests with it. */
export function verifiedTestName(key: string): string {
  return `real client: ${key}`;
}

const UA = "user-agent";

/**
 * Every tool, most specific first where rules could overlap: the order of BUILTIN_RULES follows it.
 * Codex precedes the SDKs (its User-Agent is its own); Copilot Chat's header rule stays after every
 * User-Agent rule of the tools above it, since other tools may run inside VS Code.
 */
export const KNOWN_TOOLS: readonly KnownTool[] = [
  {
    key: "claude-code",
    name: "Claude Code",
    userId: "claude-cli",
    // "claude-cli/2.1.332 (external, sdk-cli)"; interactive "(external, cli)"; VS Code extension "(external, claude-vscode)".
    rules: [
      { header: UA, pattern: "claude-cli/" },
      { header: UA, pattern: "Claude Code/.*" }, // must stay: the original design routes it here, and its configs rely on that
    ],
    recognisable: true,
    note: "Its first request, a HEAD probe of the base URL, says User-Agent Bun/<version>: a generic product, so it goes to the default id (it carries no body).",
    verifiedBy: verifiedTestName("claude-code"),
    sessionHeader: "x-claude-code-session-id",
  },
  {
    key: "codex",
    name: "Codex (CLI, exec, TUI, VS Code, desktop)",
    userId: "codex",
    // User-Agent "<originator>/<version> (<os>; <arch>) <terminal>": codex_cli_rs, codex_exec, codex-tui, codex_vscode,
    // codex_sdk_ts, codex-app-server, codex_atlas, codex_chatgpt_desktop, and "Codex <Product>" for the desktop apps.
    rules: [
      { header: "originator", pattern: "(?:codex[_-]|Codex )" },
      { header: UA, pattern: "(?:codex[_-]|Codex )" },
    ],
    recognisable: true,
    verifiedBy: verifiedTestName("codex"),
    sessionHeader: "session-id",
  },
  {
    key: "gemini-cli",
    name: "Gemini CLI",
    userId: "gemini-cli",
    // "GeminiCLI/<v>/<model> (...)", "GeminiCLI-tui/…", "GeminiCLI-<client>/…"; inside VS Code:
    // "CloudCodeVSCode/<v> (aidev_client; …; proxy_client=geminicli)".
    rules: [
      { header: UA, pattern: "GeminiCLI[/-]" },
      { header: UA, pattern: "CloudCodeVSCode/[^ ]* \\(aidev_client;[^)]*proxy_client=geminicli" },
    ],
    recognisable: true,
    verifiedBy: verifiedTestName("gemini-cli"),
  },
  {
    key: "qwen-code",
    name: "Qwen Code",
    userId: "qwen-code",
    rules: [{ header: UA, pattern: "QwenCode/" }],
    recognisable: true,
    note:
      "Use its OpenAI protocol (OPENAI_BASE_URL). Pointed at an Anthropic-compatible URL that is not Anthropic's, Qwen Code " +
      "sends Claude Code's identity (User-Agent claude-cli/<qwen version> (external, cli), x-app: cli) and lands in claude-cli.",
    verifiedBy: verifiedTestName("qwen-code"),
  },
  {
    key: "opencode",
    name: "opencode",
    userId: "opencode",
    // "opencode/1.18.33 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.14"
    rules: [{ header: UA, pattern: "opencode/" }],
    recognisable: true,
    verifiedBy: verifiedTestName("opencode"),
    sessionHeader: "x-session-id",
  },
  {
    key: "jetbrains",
    name: "JetBrains AI Assistant (openai-java SDK, sync and async)",
    userId: "pycharm-ai",
    // "OpenAIClientImpl/Java 4.101.0", "OpenAIClientAsyncImpl/Java 4.101.0"
    rules: [{ header: UA, pattern: "OpenAIClient(?:Async)?Impl/Java" }],
    recognisable: true,
    note: "Any program on the openai-java SDK sends this User-Agent, so all of them share this memory (the original design's choice).",
    verifiedBy: verifiedTestName("jetbrains"),
  },
  {
    key: "zed",
    name: "Zed",
    userId: "zed",
    // "Zed/<version> (<os>; <arch>)": Zed's one HTTP client, also used for its language-model providers.
    rules: [{ header: UA, pattern: "Zed/" }],
    recognisable: true,
    note: "Zed cannot add a header to its model requests: every Zed project shares the zed memory.",
  },
  {
    key: "crush",
    name: "Crush",
    userId: "crush",
    // "Charm-Crush/<version> (https://charm.land/crush)"
    rules: [{ header: UA, pattern: "Charm-Crush/" }],
    recognisable: true,
  },
  {
    key: "roo-code",
    name: "Roo Code",
    userId: "roo-code",
    // "RooCode/<version>" (with X-Title), also on its OpenAI-compatible provider.
    rules: [{ header: UA, pattern: "RooCode/" }],
    recognisable: true,
    note: "Forks of Roo Code that keep its headers (e.g. Syntx, Costrict) share this memory unless they set the custom header.",
  },
  {
    key: "kilo-code",
    name: "Kilo Code",
    userId: "kilo-code",
    // "Kilo-Code/<version>" (VS Code extension and Kilo CLI), older "KiloCode/<version>"
    rules: [{ header: UA, pattern: "Kilo-?Code/" }],
    recognisable: true,
  },
  {
    key: "goose",
    name: "goose",
    userId: "goose",
    // No User-Agent at all (reqwest's default); a goose-session-id header on every model request inside a session.
    rules: [{ header: "goose-session-id", pattern: "." }],
    recognisable: true,
    note: "Recognised by its goose-session-id header: requests made outside a session (none in normal use) go to the default id.",
    sessionHeader: "goose-session-id",
  },
  {
    key: "vscode-copilot",
    name: "GitHub Copilot Chat (VS Code)",
    userId: "vscode-copilot",
    // "GitHubCopilotChat/<version>"; "Editor-Version: vscode/<version>" on GitHub's endpoints. "vscode/" must stay:
    // the original design routes it here, and its configs rely on that.
    rules: [
      { header: UA, pattern: "GitHubCopilotChat/" },
      { header: UA, pattern: "vscode/.*" },
      { header: "editor-version", pattern: "vscode/" },
    ],
    recognisable: true,
  },
  {
    key: "openai-python",
    name: "OpenAI Python SDK",
    userId: "openai-python",
    rules: [{ header: UA, pattern: "(?:Async)?OpenAI/Python" }],
    recognisable: true,
    note: "Also what Aider and other tools on this SDK send.",
    verifiedBy: verifiedTestName("openai-python"),
  },
  {
    key: "openai-js",
    name: "OpenAI JavaScript SDK",
    userId: "openai-js",
    rules: [{ header: UA, pattern: "OpenAI/JS" }],
    recognisable: true,
    note: "Also what Cline and other tools on this SDK send.",
    verifiedBy: verifiedTestName("openai-js"),
  },
  {
    key: "openai-go",
    name: "OpenAI Go SDK",
    userId: "openai-go",
    rules: [{ header: UA, pattern: "OpenAI/Go" }],
    recognisable: true,
  },
  {
    key: "anthropic-python",
    name: "Anthropic Python SDK",
    userId: "anthropic-python",
    rules: [{ header: UA, pattern: "(?:Async)?Anthropic/Python" }],
    recognisable: true,
    verifiedBy: verifiedTestName("anthropic-python"),
  },
  {
    key: "anthropic-js",
    name: "Anthropic JavaScript SDK",
    userId: "anthropic-js",
    rules: [{ header: UA, pattern: "Anthropic/JS" }],
    recognisable: true,
    verifiedBy: verifiedTestName("anthropic-js"),
  },
  {
    key: "anthropic-go",
    name: "Anthropic Go SDK",
    userId: "anthropic-go",
    rules: [{ header: UA, pattern: "Anthropic/Go" }],
    recognisable: true,
  },
  {
    key: "cline",
    name: "Cline",
    userId: "cline",
    rules: [],
    recognisable: false,
    note:
      "Cline's OpenAI-compatible provider sends its library's User-Agent: the OpenAI JavaScript SDK's (openai-js) in 3.x, the AI SDK's " +
      "(ai-sdk/…, the default id) on its 2026 SDK; set the custom header in its settings.",
  },
  {
    key: "continue",
    name: "Continue",
    userId: "continue",
    rules: [],
    recognisable: false,
    note: "Continue sends a generic HTTP library's or the OpenAI SDK's User-Agent; set the custom header in its requestOptions.",
  },
  {
    key: "aider",
    name: "Aider",
    userId: "aider",
    rules: [],
    recognisable: false,
    note: "Aider calls models through LiteLLM's Python library and the OpenAI Python SDK (openai-python); set the custom header with --set-env or extra_headers.",
  },
  {
    key: "cursor",
    name: "Cursor",
    userId: "cursor",
    rules: [],
    recognisable: false,
    note: "Cursor sends model requests from Cursor's servers, not from your machine: a memproxy on 127.0.0.1 cannot be reached. It needs a public HTTPS address.",
  },
];

/** The built-in rule layer, in order (more specific first): what the router applies after the user's own header_patterns. */
export const BUILTIN_RULES: readonly { header: string; pattern: string; user_id: string; tool: string }[] = KNOWN_TOOLS.flatMap((t) =>
  t.rules.map((r) => ({ header: r.header, pattern: r.pattern, user_id: t.userId, tool: t.name })),
);

/**
 * Lower-cased product tokens of generic HTTP libraries, runtimes and browsers: a User-Agent starting with one never
 * derives an id. Claude Code's first HEAD probe says `Bun/1.4.x`; Node's fetch says `node`; browsers `Mozilla/5.0`.
 */
export const GENERIC_PRODUCTS: readonly string[] = [
  "curl",
  "wget",
  "httpie",
  "python",
  "python-requests",
  "python-httpx",
  "python-urllib",
  "python-urllib3",
  "aiohttp",
  "node",
  "node-fetch",
  "undici",
  "axios",
  "got",
  "superagent",
  "bun",
  "deno",
  "java",
  "java-http-client",
  "okhttp",
  "apache-httpclient",
  "jetty",
  "go-http-client",
  "reqwest",
  "hyper",
  "libwww-perl",
  "ruby",
  "faraday",
  "guzzlehttp",
  "dart",
  "dalvik",
  "cfnetwork",
  "restsharp",
  "postmanruntime",
  "insomnia",
  "mozilla",
  "opera",
  // The Vercel AI SDK's own suffix: a tool on it that sets no User-Agent of its own (Cline on its SDK) starts with it.
  "ai-sdk",
];

/** The tool `memproxy setup <key>` knows by that key. */
export function findTool(key: string): KnownTool | undefined {
  return KNOWN_TOOLS.find((t) => t.key === key);
}
