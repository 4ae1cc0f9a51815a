// The nginx side of the benchmark: an nginx.conf that routes as memproxy's config does (regex `map`s
// in the same order: the config's rules, then memproxy's built-in tool rules; the custom header first,
// with the same id check; an id derived from the User-Agent's product last), generated from that
// config so the two cannot drift apart.
import type { Config } from "../../src/config.ts";
import { compilePattern } from "../../src/pattern.ts";
import { USER_ID } from "../../src/config.ts";
import { BUILTIN_RULES, GENERIC_PRODUCTS } from "../../src/tools.ts";

/** Where nginx listens, forwards to, and keeps its files. */
export interface NginxSite {
  port: number;
  backendPort: number;
  /** Absolute directory for the pid file, logs and temp files. */
  prefix: string;
  /** `nginx -V` output: modules built --without-… get no temp path directive. */
  buildInfo: string;
}

const INVALID = "!invalid";

/** Header sets that exercise every rule of the bench config, the anchoring, the custom header and its check. */
export const ROUTING_PROBES: readonly Record<string, string>[] = [
  { "user-agent": "claude-cli/2.1.197 (external, cli)" },
  { "user-agent": "Claude Code/1.0.3" },
  { "user-agent": "OpenAIClientImpl/Java 2.1.0" },
  { "user-agent": "vscode/1.95.0" },
  { "user-agent": "codex_cli_rs/0.30.0 (Debian 12; x86_64)", originator: "codex_cli_rs" },
  { "user-agent": "node", originator: "codex_exec" },
  { "user-agent": "AsyncOpenAI/Python 1.50.0" },
  { "user-agent": "OpenAI/JS 6.49.0" },
  { "user-agent": "Anthropic/Python 0.40.0" },
  { "user-agent": "Anthropic/JS 0.30.0" },
  { "user-agent": "curl/8.0.1" },
  { "user-agent": "my tool claude-cli/2" },
  { "user-agent": "qwencode/0.15.10 (linux; x64)" },
  { "user-agent": "GeminiCLI/0.1.5/gemini-2.5-pro (linux; x64)" },
  { "user-agent": "Python-Requests/2.32" },
  { "user-agent": "claude-cli/2.1.197", "x-memory-user-id": "my-project" },
  { "user-agent": "curl/8.0.1", "x-sm-user-id": "someone-else" },
  { "user-agent": "curl/8.0.1", "x-memory-user-id": "not valid!" },
];

/** nginx's variable for a request header: $http_ + the name lowercased, '-' as '_'. */
function headerVar(name: string): string {
  return `$http_${name.toLowerCase().replaceAll("-", "_")}`;
}

/** A double-quoted nginx string: nginx turns \\ into \ and \" into ", and leaves other escapes. */
function quote(s: string): string {
  return `"${s.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

/** The regex of a User-Agent starting with a generic product (memproxy derives no id from it), any case. */
function genericProducts(routing: Config["routing"]): string {
  const names = [...GENERIC_PRODUCTS, ...routing.generic_user_agents].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return `~*^\\s*(?:${names.join("|")})(?:[\\s/;(),]|$)`;
}

/**
 * The routing as nginx maps. Rules apply in order, first match wins, across different headers; so
 * consecutive rules on one header become one map (nginx tries a map's regexes in order) whose
 * default is the next map's variable. The config's rules come first, then memproxy's built-in tool
 * rules (unless `builtin_rules: false`); the last map's default is the id derived from the
 * User-Agent's first product token (unless `derive_from_user_agent: false`), else the default id.
 * nginx cannot lower-case a value, so it derives an id only from a product already in lower case
 * (and made of id characters); memproxy lower-cases any other: such User-Agents route apart, which the
 * bench's routing check reports.
 * @returns the map blocks, and the variable holding the decided user id ("!invalid" when the
 *   custom header holds an unacceptable id, as memproxy's 400).
 */
export function routingMaps(routing: Config["routing"]): { maps: string; userVar: string } {
  const groups: { header: string; rules: { pattern: string; user_id: string }[] }[] = [];
  const rules = [...routing.header_patterns, ...(routing.builtin_rules ? BUILTIN_RULES : [])];
  for (const rule of rules) {
    const compiled = compilePattern(rule.pattern);
    if (!compiled.ok) throw new Error(`pattern ${JSON.stringify(rule.pattern)}: ${compiled.error}`);
    const header = rule.header.toLowerCase();
    const last = groups.at(-1);
    if (last && last.header === header) last.rules.push({ pattern: rule.pattern, user_id: rule.user_id });
    else groups.push({ header, rules: [{ pattern: rule.pattern, user_id: rule.user_id }] });
  }
  const blocks: string[] = [];
  let last = quote(routing.default_user_id);
  if (routing.derive_from_user_agent) {
    blocks.push(
      `  # memproxy's id from the User-Agent's product (lower-case products only, see nginx.ts).\n` +
        `  map $http_user_agent $mp_derived {\n    default ${last};\n    ${quote(genericProducts(routing))} ${last};\n` +
        `    ${quote("~^\\s*(?<mp_product>[a-z0-9_:][a-z0-9_:-]{0,99})(?:[\\s/;(),]|$)")} $mp_product;\n  }`,
    );
    last = "$mp_derived";
  }
  for (let g = groups.length - 1; g >= 0; g--) {
    const { header, rules } = groups[g]!;
    const fallback = g + 1 < groups.length ? `$mp_rule_${g + 1}` : last;
    // A pattern matches at the start of the value (Python's re.match), as memproxy's router applies it;
    // PCRE reads these patterns (plain text, groups, classes, ?, .*) as Python's re does.
    const lines = rules.map(({ pattern, user_id }) => `    ${quote(`~^(?:${pattern})`)} ${quote(user_id)};`);
    blocks.push(`  map ${headerVar(header)} $mp_rule_${g} {\n    default ${fallback};\n${lines.join("\n")}\n  }`);
  }
  const byPatterns = groups.length ? "$mp_rule_0" : last;
  const custom = headerVar(routing.custom_header);
  blocks.push(
    `  # The custom header wins when present; an unacceptable id is refused, as memproxy does.\n` +
      `  map ${custom} $mp_user {\n    default ${quote(INVALID)};\n    "" ${byPatterns};\n    ${quote("~" + USER_ID.source)} ${custom};\n  }`,
  );
  return { maps: blocks.join("\n\n"), userVar: "$mp_user" };
}

/**
 * A complete nginx.conf for a foreground, unprivileged nginx on loopback, proxying like memproxy:
 * streaming both ways (no request or response buffering), keep-alive to the backend, the user id
 * header set (replacing any the client sent), an identity body asked of the backend.
 */
export function nginxConfig(config: Config, site: NginxSite): string {
  const { maps, userVar } = routingMaps(config.routing);
  const idHeaders = [config.forward.user_id_header, ...config.forward.also_send_user_id_as];
  const p = site.prefix;
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .filter((m) => m === "client_body" || !site.buildInfo.includes(`--without-http_${m}_module`))
    .map((m) => `  ${m}_temp_path ${p}/${m}_temp;`)
    .join("\n");
  const idleS = Math.max(1, Math.ceil(config.forward.stream_idle_timeout / 1000));
  return `# Generated by scripts/bench.ts from the bench's memproxy config: do not edit.
worker_processes auto;
daemon off;
pid ${p}/nginx.pid;
error_log ${p}/error.log warn;
# Favour nginx: JIT-compiled regexes for the maps.
pcre_jit on;

events {
  worker_connections 4096;
}

http {
  default_type application/json;
  # nginx's default: one combined-format line per request, like memproxy's access log.
  access_log ${p}/access.log;
${temp}
  client_max_body_size 1g;

  upstream llm_backend {
    server 127.0.0.1:${site.backendPort};
    keepalive 512;
  }

${maps}

  server {
    listen 127.0.0.1:${site.port};

    location / {
      if (${userVar} = ${quote(INVALID)}) {
        return 400 '{"error":{"message":"invalid ${config.routing.custom_header} header","type":"invalid_request_error"}}';
      }
      proxy_pass http://llm_backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
${idHeaders.map((h) => `      proxy_set_header ${h} ${userVar};`).join("\n")}
      proxy_set_header Accept-Encoding identity;
      # Stream like memproxy: SSE events and large bodies pass through as they come.
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_connect_timeout 5s;
      proxy_read_timeout ${idleS}s;
      proxy_send_timeout ${idleS}s;
    }
  }
}
`;
}
