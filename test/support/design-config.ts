// The original design's routing config, as its document (ORIGINAL-DESIGN.md) gives it: configs written for it must keep working.

/** Its user_id_mappings block, verbatim: three User-Agent rules and the default. */
export const DESIGN_ROUTING = `
user_id_mappings:
  custom_header: "x-memory-user-id"
  header_patterns:
    - header: "user-agent"
      pattern: "OpenAIClientImpl/Java"
      user_id: "pycharm-ai"
    - header: "user-agent"
      pattern: "Claude Code/.*"
      user_id: "claude-cli"
    - header: "user-agent"
      pattern: "vscode/.*"
      user_id: "vscode-copilot"
  default_user_id: "default-dev"
`;

/** Its three rules as memproxy reads them. */
export const DESIGN_RULES = [
  { header: "user-agent", pattern: "OpenAIClientImpl/Java", user_id: "pycharm-ai" },
  { header: "user-agent", pattern: "Claude Code/.*", user_id: "claude-cli" },
  { header: "user-agent", pattern: "vscode/.*", user_id: "vscode-copilot" },
];
