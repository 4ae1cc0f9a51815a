// memproxy's configuration: the valibot schema (the single source of the Config type), YAML loading with
// bounds, environment substitution, command-line overrides, and error lines that name the file, the path
// and the problem.
import { open } from "node:fs/promises";
import * as v from "valibot";
import { Composer, isAlias, isCollection, isPair, Parser, parseDocument, type CST, type Document } from "yaml";
import { redactUrl, urlOf } from "./address.ts";
import { hasLitellmSections, litellmView } from "./litellm-config.ts";
import defaultConfigText from "./default-config.yaml" with { type: "text" };
import { patternError } from "./pattern.ts";

/** Name used for the embedded default config in messages. */
export const EMBEDDED_CONFIG_NAME = "<embedded default config>";

/** The largest config file memproxy reads (a shared LiteLLM config is a few KiB; this is far beyond). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
/** Values a config may expand to through YAML aliases (LiteLLM configs share settings that way). */
export const MAX_EXPANDED_NODES = 1_000_000;

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/**
 * What a memory id may look like: Supermemory keys memories by container tags of letters, digits, `_`, `:`
 * and `-`, at most 100 characters (its docs, concepts/container-tags). Every id memproxy sends obeys it.
 */
export const USER_ID = /^[A-Za-z0-9_:-]{1,100}$/;
/** USER_ID in words, for messages. */
export const USER_ID_RULE = "1-100 characters of A-Z a-z 0-9 _ : - (Supermemory's rule for memory ids)";

const HeaderName = v.pipe(
  v.string(),
  v.regex(HEADER_NAME, (i) => `not a valid HTTP header name: ${JSON.stringify(i.input)}`),
  v.toLowerCase(),
);
const UserId = v.pipe(v.string(), v.regex(USER_ID, (i) => `user id ${JSON.stringify(i.input)} must be ${USER_ID_RULE}`));

/** A pattern in Python re syntax (whether it is matched against the whole value or a prefix does not change that). */
const Pattern = v.pipe(
  v.string(),
  v.check(
    (p) => patternError(p) === undefined,
    (i) => `invalid regular expression: ${patternError(String(i.input))}`,
  ),
);

/** An integer, also given as a string (as it is after `${PORT}` substitution, or from a command-line flag). */
const Int = (min: number, max: number) =>
  v.pipe(
    v.union([v.number(), v.pipe(v.string(), v.trim(), v.regex(/^-?\d+$/), v.transform(Number))], (i) =>
      `expected a whole number from ${min} to ${max}, got ${JSON.stringify(i.input)}`,
    ),
    v.integer((i) => `expected a whole number, got ${i.input}`),
    v.minValue(min, (i) => `must be at least ${min}, got ${i.input}`),
    v.maxValue(max, (i) => `must be at most ${max}, got ${i.input}`),
  );

const Bool = v.union([v.boolean(), v.pipe(v.picklist(["true", "false"]), v.transform((s) => s === "true"))], (i) =>
  `expected true or false, got ${JSON.stringify(i.input)}`,
);

const DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const durationMessage = (i: { input: unknown }) =>
  `expected a duration such as 30, "30s", "10m" or "500ms", got ${JSON.stringify(i.input)}`;
/** A duration in seconds (a number) or with a unit ("500ms", "30s", "10m", "1h"); output in milliseconds. Defaults pass through it too. */
const Duration = v.pipe(
  v.union(
    [v.pipe(v.number(), v.minValue(0, durationMessage)), v.pipe(v.string(), v.trim(), v.regex(DURATION, durationMessage))],
    durationMessage,
  ),
  v.transform((d) => {
    if (typeof d === "number") return Math.round(d * 1000);
    const [, n, unit] = DURATION.exec(d)!;
    return Math.round(Number(n) * UNIT_MS[(unit ?? "s") as keyof typeof UNIT_MS]);
  }),
);

// Its check is the pipe's last step: a URL it refuses stays "typed", so that the union below reports this
// message (which hides a password) instead of its own. The trailing slash goes in ConfigSchema's transform.
const BackendUrl = v.pipe(
  v.string(),
  v.trim(),
  v.check((s) => {
    try {
      const u = new URL(s);
      // A bare "?" or "#" leaves search and hash empty, but would still end up in every forwarded URL.
      return (u.protocol === "http:" || u.protocol === "https:") && !s.includes("?") && !s.includes("#");
    } catch {
      return false;
    }
  }, (i) => `expected an http:// or https:// URL without query or fragment, got ${JSON.stringify(redactUrl(String(i.input)))}`),
);

const PatternRule = v.strictObject({
  header: v.optional(HeaderName, "user-agent"),
  pattern: Pattern,
  user_id: UserId,
});

const UserIdMappings = v.strictObject({
  custom_header: v.optional(HeaderName, "x-memory-user-id"),
  header_patterns: v.optional(v.nullable(v.array(PatternRule)), []),
  default_user_id: v.optional(UserId, "default-dev"),
  /** The known-tool rules (src/tools.ts), applied after header_patterns. */
  builtin_rules: v.optional(Bool, true),
  /** When no rule matches: an id from the User-Agent's first product token (not for generic HTTP libraries). */
  derive_from_user_agent: v.optional(Bool, true),
  /** More product tokens (besides the built-in list) that never give an id of their own, e.g. [my-http-lib]. */
  generic_user_agents: v.optional(v.array(v.pipe(v.string(), v.trim(), v.minLength(1), v.toLowerCase())), []),
});

const Listen = v.strictObject({
  host: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty")), "127.0.0.1"),
  port: v.optional(Int(0, 65535), 8764),
  /** A client connection silent this long is closed; a proxied request is exempt while its backend call runs long. */
  idle_timeout: v.optional(
    v.pipe(Duration, v.maxValue(255_000, "must be at most 255s (Bun's limit); 0 disables it")),
    10,
  ),
});

const Forward = v.strictObject({
  /** Header that carries the decided user id to the backend. */
  user_id_header: v.optional(HeaderName, "x-sm-user-id"),
  /** Further headers that get the same id, e.g. x-litellm-end-user-id for LiteLLM's spend tracking. */
  also_send_user_id_as: v.optional(v.array(HeaderName), []),
  /**
   * Request headers whose value becomes Supermemory's x-sm-conversation-id (the first present wins), so
   * that one chat session keeps one conversation, e.g. [x-claude-code-session-id]. A client's own
   * x-sm-conversation-id is never replaced.
   */
  conversation_headers: v.optional(v.array(HeaderName), []),
  /** Longest wait for the backend's response head. */
  first_byte_timeout: v.optional(Duration, 600),
  /** Longest silence inside a response body once it started; 0 means no limit. */
  stream_idle_timeout: v.optional(Duration, 900),
  /** Timeout of the backend liveness check behind GET /health. */
  health_timeout: v.optional(Duration, 2),
  /**
   * Backend calls awaiting their answer at once on kept-alive connections (Bun's fetch keeps at most 64);
   * a call beyond them waits up to keepalive_wait for one to end. 0: no limit.
   */
  keepalive_limit: v.optional(Int(0, 64), 64),
  /** Longest such wait; then the call goes anyway, on a new connection. 0: never wait. */
  keepalive_wait: v.optional(v.pipe(Duration, v.maxValue(1000, "must be at most 1s: an LLM call beyond the limit is never held longer")), "20ms"),
});

const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$/i;
const SIZE_UNIT: Record<string, number> = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 };
const sizeMessage = (i: { input: unknown }) => `expected a size such as 1048576, "512KiB" or "100MB", got ${JSON.stringify(i.input)}`;
/** A size in bytes (a number) or with a unit ("64KiB", "100MB", "1GiB"); output in bytes. */
const Size = v.pipe(
  v.union([v.pipe(v.number(), v.minValue(0, sizeMessage)), v.pipe(v.string(), v.trim(), v.regex(SIZE, sizeMessage))], sizeMessage),
  v.transform((s) => {
    if (typeof s === "number") return Math.floor(s);
    const [, n, unit] = SIZE.exec(s)!;
    return Math.floor(Number(n) * SIZE_UNIT[(unit ?? "b").toLowerCase()]!);
  }),
);

const Access = v.strictObject({
  /** Access keys for memproxy itself; when any is set, requests need one (Authorization: Bearer or x-api-key). */
  keys: v.optional(v.array(v.pipe(v.string(), v.minLength(16, "an access key must be at least 16 characters"))), []),
  /** Whether clients may choose their memory with the custom header. */
  custom_header: v.optional(Bool, true),
  /** Ids a custom-header value may name: each entry matches the WHOLE id (re.fullmatch): "alice", "team-.*". Empty: any. */
  allowed_user_ids: v.optional(v.array(Pattern), []),
  /**
   * Host names that a memproxy listening on loopback without keys answers besides localhost, 127.x and [::1] (a
   * web page could otherwise use it through DNS rebinding), e.g. host.docker.internal.
   */
  allowed_hosts: v.optional(
    v.array(v.pipe(v.string(), v.trim(), v.toLowerCase(), v.regex(/^[a-z0-9_.-]+$/, (i) => `expected a host name without port, got ${JSON.stringify(i.input)}`))),
    [],
  ),
  /** What a custom-header value outside allowed_user_ids gets: refused with 403, or ignored (the rules apply). */
  on_disallowed: v.optional(v.picklist(["refuse", "ignore"], (i) => `expected refuse or ignore, got ${JSON.stringify(i.input)}`), "refuse"),
});

const Limits = v.strictObject({
  /** Largest request body; a larger one gets 413. */
  max_body_size: v.optional(Size, "100MiB"),
  /** Largest total size of a request's header names and values; a larger one gets 431. */
  max_header_size: v.optional(v.pipe(Size, v.maxValue(256 * 1024, "must be at most 256KiB")), "64KiB"),
  /** Requests served at once (streams included); beyond it, 503 with Retry-After. */
  max_concurrent_requests: v.optional(Int(1, 1_000_000), 4096),
});

const Backends = v.strictObject({
  /** How long a backend that refused a connection or timed out gets no traffic, before a liveness probe. */
  cooldown: v.optional(Duration, 10),
  /** Request bodies up to this size are kept so that a refused connection can be retried on another backend. */
  retry_body_size: v.optional(Size, "1MiB"),
});

const Shutdown = v.strictObject({
  /** On SIGTERM/SIGINT, how long requests and streams in flight may take to finish before they are cut. */
  drain_timeout: v.optional(Duration, 30),
});

const Reload = v.strictObject({
  /** Re-read the config file when it changes on disk (SIGHUP always re-reads it). */
  watch: v.optional(Bool, true),
});

const Logging = v.strictObject({
  level: v.optional(
    v.picklist(["debug", "info", "warn", "error"], (i) => `expected debug, info, warn or error, got ${JSON.stringify(i.input)}`),
    "info",
  ),
  /** auto: readable lines on a terminal, JSON lines otherwise (services, log collectors). */
  format: v.optional(v.picklist(["auto", "json", "text"], (i) => `expected auto, json or text, got ${JSON.stringify(i.input)}`), "auto"),
});

const MetricsSettings = v.strictObject({
  /** GET /metrics (Prometheus), GET /memory-routing/stats and token counting. */
  enabled: v.optional(Bool, true),
  /** Distinct user ids with their own metrics label (configured ids always have one); the rest count as "other". */
  max_user_labels: v.optional(Int(1, 100_000), 100),
});

const Litellm = v.strictObject({
  /** Start LiteLLM as a child and supervise it (also --spawn-litellm). */
  spawn: v.optional(Bool, false),
  /** The LiteLLM executable (a name on PATH or a path), or a command with its arguments. */
  command: v.optional(
    v.union([v.pipe(v.string(), v.minLength(1)), v.pipe(v.array(v.string()), v.minLength(1))], "expected a command (string) or a list of strings"),
    "litellm",
  ),
  /** The config file LiteLLM reads; default: the same file as memproxy. */
  config: v.optional(v.pipe(v.string(), v.minLength(1))),
  host: v.optional(v.pipe(v.string(), v.minLength(1)), "127.0.0.1"),
  port: v.optional(Int(1, 65535), 8765),
  /** Extra command-line arguments, e.g. ["--num_workers", "2"]. */
  args: v.optional(v.array(v.string()), []),
  /** Keep LiteLLM's own line per request (uvicorn's access log) in memproxy's log; memproxy logs every request already. */
  access_log: v.optional(Bool, false),
  /** Extra environment for LiteLLM (API keys are better kept in the service's environment file). */
  env: v.optional(v.record(v.string(), v.pipe(v.union([v.string(), v.number(), v.boolean()]), v.transform(String))), {}),
  /** Longest wait for LiteLLM's /health/readiness at start and after a restart. */
  ready_timeout: v.optional(Duration, 120),
  /** On shutdown, how long LiteLLM gets after SIGTERM before SIGKILL. */
  stop_timeout: v.optional(Duration, 15),
  restart: v.optional(
    v.strictObject({
      initial_backoff: v.optional(Duration, 1),
      max_backoff: v.optional(Duration, 30),
      /** More unexpected exits than this within `window`: give up. */
      max_restarts: v.optional(Int(0, 1000), 5),
      window: v.optional(Duration, 300),
    }),
    {},
  ),
});

const MemproxySection = v.strictObject({
  litellm: v.optional(Litellm, {}),
  listen: v.optional(Listen, {}),
  forward: v.optional(Forward, {}),
  access: v.optional(Access, {}),
  limits: v.optional(Limits, {}),
  backends: v.optional(Backends, {}),
  shutdown: v.optional(Shutdown, {}),
  reload: v.optional(Reload, {}),
  logging: v.optional(Logging, {}),
  metrics: v.optional(MetricsSettings, {}),
});

/** memproxy's view of the shared file (its own keys strictly, LiteLLM's left alone), shaped for use. */
export const ConfigSchema = v.pipe(
  v.looseObject({
    user_id_mappings: v.optional(UserIdMappings, {}),
    litellm_backend_url: v.optional(
      v.union([BackendUrl, v.pipe(v.array(BackendUrl), v.minLength(1, "needs at least one URL"))], (i) =>
        `expected a URL or a list of URLs, got ${redactUrl(JSON.stringify(i.input))}`,
      ),
    ),
    memproxy: v.optional(MemproxySection, {}),
  }),
  v.transform(({ user_id_mappings: routing, litellm_backend_url: url, memproxy: m }) => ({
    routing: { ...routing, header_patterns: routing.header_patterns ?? [] },
    /** The backends' base URLs: litellm_backend_url, else the LiteLLM of memproxy.litellm. */
    backends: (Array.isArray(url) ? url : url ? [url] : [litellmUrl(m.litellm)]).map((u) => u.replace(/\/+$/, "")),
    /** Whether litellm_backend_url was given; if not, the backend follows a spawned LiteLLM's port. */
    backendExplicit: url !== undefined,
    litellm: m.litellm,
    listen: m.listen,
    forward: m.forward,
    access: m.access,
    limits: m.limits,
    backendPool: m.backends,
    shutdown: m.shutdown,
    reload: m.reload,
    logging: m.logging,
    metrics: m.metrics,
  })),
);

/** The loaded configuration: the schema's output, where it came from, and what is worth a warning. */
export type Config = v.InferOutput<typeof ConfigSchema> & {
  /** File path, or EMBEDDED_CONFIG_NAME. */
  readonly source: string;
  /** Things that load but are probably mistakes (e.g. a misspelt `memprxy:` key). */
  readonly warnings: readonly string[];
  /** The whole document as written (LiteLLM's keys included, no substitution), for checks of the LiteLLM side. */
  readonly document: Readonly<Record<string, unknown>>;
  /** The file's text (LiteLLM reads it with its own YAML rules). */
  readonly text: string;
  /**
   * The same file as LiteLLM reads it (YAML 1.1, litellm-config.ts), when it has LiteLLM's sections and that
   * reading succeeds; made from the same parse as `document`.
   */
  readonly litellmDocument?: Readonly<Record<string, unknown>>;
};
export type RoutingConfig = Config["routing"];
export type PatternRuleConfig = RoutingConfig["header_patterns"][number];
export type ForwardConfig = Config["forward"];

/** A configuration that cannot be used; `problems` are full lines, `file: path: message`. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/** A value given on the command line in place of the file's, checked by the same schema. */
export interface ConfigOverride {
  /** Where it goes in the document, e.g. ["memproxy", "listen", "port"]. */
  path: readonly string[];
  value: unknown;
  /** The flag it came from, named in error messages, e.g. "--port". */
  flag: string;
}

/** Top-level keys whose values belong to memproxy and get environment substitution. */
const OWN_KEYS = ["user_id_mappings", "litellm_backend_url", "memproxy"] as const;

type PathItem = string | number;
function formatPath(path: readonly PathItem[]): string {
  let out = "";
  for (const p of path) out += typeof p === "number" ? `[${p}]` : out ? `.${p}` : p;
  return out || "(top level)";
}

const ENV_WHOLE = /^os\.environ\/([A-Za-z_][A-Za-z0-9_]*)$/;
const ENV_INLINE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** Replaces `os.environ/NAME` (whole value) and `${NAME}` / `${NAME:-default}` in every string below `value`. */
function substituteEnv(
  value: unknown,
  path: PathItem[],
  env: Record<string, string | undefined>,
  problems: string[],
): unknown {
  if (typeof value === "string") {
    const whole = ENV_WHOLE.exec(value);
    if (whole) {
      const got = env[whole[1]!];
      if (got === undefined) problems.push(`${formatPath(path)}: environment variable ${whole[1]} is not set`);
      return got ?? value;
    }
    return value.replace(ENV_INLINE, (m, name: string, fallback: string | undefined) => {
      const got = env[name];
      if (got !== undefined && (got !== "" || fallback === undefined)) return got;
      if (fallback !== undefined) return fallback;
      problems.push(`${formatPath(path)}: environment variable ${name} is not set`);
      return m;
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substituteEnv(item, [...path, i], env, problems));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, item] of Object.entries(value)) out[k] = substituteEnv(item, [...path, k], env, problems);
    return out;
  }
  return value;
}

function issuePath(issue: v.BaseIssue<unknown>): PathItem[] {
  return (issue.path ?? []).map((p) => p.key as PathItem);
}

function issueMessage(issue: v.BaseIssue<unknown>): string {
  const path = issuePath(issue);
  if (issue.type === "strict_object" && path.length) return `unknown setting ${JSON.stringify(path.at(-1))}`;
  return issue.message;
}

/**
 * How many values the document expands to, counting what aliases repeat (each node's size is computed once
 * and reused), so that a document whose aliases expand beyond `limit` is refused before it is expanded.
 * @returns the count; more than `limit` (Infinity for a node that contains itself) once past it.
 */
function expandedSize(doc: Document, limit: number): number {
  const sizes = new Map<unknown, number>();
  const size = (node: unknown): number => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      return target ? size(target) : 1;
    }
    if (!isCollection(node)) return 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    sizes.set(node, Infinity); // while it is being counted: an alias to it from inside is a cycle
    let n = 1;
    for (const item of node.items) {
      n += isPair(item) ? size(item.key) + size(item.value) : size(item);
      if (n > limit) break;
    }
    sizes.set(node, n);
    return n;
  };
  return size(doc.contents);
}

/**
 * Parses and validates configuration text.
 * @param text YAML text; an empty document means all defaults.
 * @param source the file name used in messages.
 * @param env environment for substitution (defaults to process.env).
 * @param overrides command-line values, checked by the same schema (errors name the flag).
 * @returns the configuration; throws ConfigError listing every problem.
 */
export function parseConfig(text: string, source: string, env = process.env, overrides: readonly ConfigOverride[] = []): Config {
  const { raw, tokens } = parseYaml(text, source);
  const problems: string[] = [];
  const data: Record<string, unknown> = { ...raw };
  for (const key of OWN_KEYS) {
    if (data[key] !== undefined && data[key] !== null) data[key] = substituteEnv(data[key], [key], env, problems);
    else delete data[key];
  }
  for (const o of overrides) setPath(data, o.path, o.value);
  const lines = problems.map((p) => `${source}: ${p}`);
  const result = v.safeParse(ConfigSchema, data, { abortEarly: false });
  if (!result.success) {
    // A value whose variable is missing was already reported; its type error would only repeat it.
    const reported = new Set(problems.map((p) => p.slice(0, p.indexOf(": "))));
    for (const issue of result.issues) {
      const at = formatPath(issuePath(issue));
      if (reported.has(at)) continue;
      const flag = overrides.find((o) => formatPath(o.path) === at)?.flag;
      lines.push(flag ? `${flag}: ${issueMessage(issue)}` : `${source}: ${at}: ${issueMessage(issue)}`);
    }
  }
  if (lines.length || !result.success) throw new ConfigError(source, lines);
  const litellmDocument = hasLitellmSections(raw) ? litellmView(tokens, text) : undefined;
  return { ...result.output, source, warnings: nearMisses(raw, source), document: raw, text, ...(litellmDocument && { litellmDocument }) };
}

/** The file read as YAML 1.2, and its syntax tree (which LiteLLM's reading of it is composed from again). */
function parseYaml(text: string, source: string): { raw: Record<string, unknown>; tokens: readonly CST.Token[] } {
  const tokens = Array.from(new Parser().parse(text));
  const docs = Array.from(new Composer({ uniqueKeys: true }).compose(tokens, true, text.length));
  const doc = docs[0]!;
  if (docs.length > 1 || doc.errors.length) {
    // Read again for the messages: parseDocument places each error (line, column), and says "one document only".
    const pretty = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
    throw new ConfigError(source, pretty.errors.map((e) => `${source}: invalid YAML: ${e.message.split("\n")[0]}`));
  }
  // Aliases are not counted (large LiteLLM configs share settings through them, and LiteLLM's PyYAML takes any
  // number): what they expand to is bounded instead.
  if (expandedSize(doc, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES) {
    throw new ConfigError(source, [`${source}: (top level): the YAML expands to more than ${MAX_EXPANDED_NODES} values through its aliases; memproxy refuses it`]);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: -1 }) ?? {};
  } catch (err) {
    throw new ConfigError(source, [`${source}: invalid YAML: ${(err as Error).message.split("\n")[0]}`]);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ConfigError(source, [`${source}: (top level): expected a mapping of settings`]);
  }
  return { raw: raw as Record<string, unknown>, tokens };
}

function setPath(data: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let at: Record<string, unknown> = data;
  for (const key of path.slice(0, -1)) {
    const next = at[key];
    at = at[key] = next && typeof next === "object" && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
  }
  at[path.at(-1)!] = value;
}

/** memproxy's own top-level keys, and LiteLLM's, which a near miss is compared with. */
const KNOWN_TOP_LEVEL = [...OWN_KEYS, "model_list", "general_settings", "litellm_settings", "router_settings", "environment_variables", "include", "mcp_servers", "guardrails", "callback_settings", "credential_list", "files_settings", "assistant_settings", "search_tools", "vector_store_registry"];

/** Top-level keys that are not known but are one or two letters away from one of memproxy's own. */
function nearMisses(raw: Record<string, unknown>, source: string): string[] {
  const out: string[] = [];
  for (const key of Object.keys(raw)) {
    if (KNOWN_TOP_LEVEL.includes(key)) continue;
    const near = OWN_KEYS.find((own) => editDistance(key.toLowerCase(), own) <= 2);
    if (near) out.push(`${source}: ${key}: not a setting memproxy knows, and it ignores it; did you mean ${near}?`);
  }
  return out;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** The URL of a LiteLLM started by memproxy (also the default backend: http://127.0.0.1:8765). */
export function litellmUrl(litellm: { host: string; port: number }): string {
  return urlOf(litellm.host, litellm.port);
}

/**
 * Loads the configuration from a file, or the embedded default when `path` is undefined.
 * @returns the configuration; throws ConfigError (also for a missing, unreadable or oversized file).
 */
export async function loadConfig(path?: string, env = process.env, overrides: readonly ConfigOverride[] = []): Promise<Config> {
  if (path === undefined) return parseConfig(defaultConfigText, EMBEDDED_CONFIG_NAME, env, overrides);
  return parseConfig(await readConfigText(path), path, env, overrides);
}

/**
 * A config file's text, read up to MAX_CONFIG_BYTES (a device such as /dev/zero never ends).
 * @throws ConfigError saying what is wrong with the file and what to do.
 */
export async function readConfigText(path: string): Promise<string> {
  let file;
  try {
    file = await open(path, "r");
  } catch (err) {
    throw new ConfigError(path, [`${path}: cannot read config: ${fileProblem(err)}`]);
  }
  try {
    const buffer = new Uint8Array(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES) {
        throw new ConfigError(path, [`${path}: cannot read config: larger than ${MAX_CONFIG_BYTES / 1024 / 1024} MiB, which no memproxy or LiteLLM config needs (is it the right file?)`]);
      }
    }
    return new TextDecoder().decode(buffer.subarray(0, length));
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, [`${path}: cannot read config: ${fileProblem(err)}`]);
  } finally {
    await file.close();
  }
}

/** Why a file could not be read, and what to do; `setting` is what named the file (default: --config). */
export function fileProblem(err: unknown, setting = "--config"): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT") {
    return setting === "--config"
      ? "file not found. Pass an existing YAML file to --config; to start one, copy config.example.yaml (it is in the release archive and the repository)"
      : `file not found. Point ${setting} at LiteLLM's config file`;
  }
  if (code === "EISDIR") return "it is a directory; pass the YAML file inside it";
  if (code === "EACCES" || code === "EPERM") return "permission denied; make the file readable by the user memproxy runs as";
  return (err as Error).message ?? String(err);
}

/**
 * Settings that apply only at start, as the file names them and as `Config` holds them: every other setting
 * changes on reload. The one list of them.
 */
const RESTART_ONLY = [
  { setting: "memproxy.listen", key: "listen" },
  { setting: "memproxy.litellm", key: "litellm" },
  { setting: "memproxy.logging", key: "logging" },
  { setting: "memproxy.metrics", key: "metrics" },
] as const satisfies readonly { setting: string; key: keyof Config }[];

/**
 * The configuration a running memproxy takes from a reloaded file: `next`, with the settings that apply only
 * at start kept as they run now.
 * @returns that configuration, and a note for each start-only setting that changed in the file.
 */
export function reconcile(running: Config, next: Config): { config: Config; notes: string[] } {
  const notes: string[] = [];
  const config: Config = {
    ...next,
    // A backend that follows the spawned LiteLLM keeps following the one running.
    backends: next.backendExplicit ? next.backends : running.backendExplicit ? [litellmUrl(running.litellm)] : running.backends,
  };
  for (const { setting, key } of RESTART_ONLY) {
    if (!sameValue(running[key], next[key])) notes.push(`${setting}: cannot change while running; restart memproxy to apply it`);
    keep(config, running, key);
  }
  return { config, notes };
}

function keep<K extends keyof Config>(into: Config, from: Config, key: K): void {
  into[key] = from[key];
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The embedded default configuration's text (what `memproxy` uses without --config). */
export const DEFAULT_CONFIG_TEXT: string = defaultConfigText;
