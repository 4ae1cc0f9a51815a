// memproxy's configuration: the valibot schema (the single source of the type), YAML loading,
// environment substitution and error messages that name the file, the path and the problem.
import * as v from "valibot";
import { parseDocument } from "yaml";
import defaultConfigText from "./default-config.yaml" with { type: "text" };
import { compilePattern } from "./pattern.ts";

/** Name used for the embedded default config in messages. */
export const EMBEDDED_CONFIG_NAME = "<embedded default config>";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** What a user id may look like, whether configured or sent in the custom header. */
export const USER_ID = /^[A-Za-z0-9._:@/-]{1,128}$/;

const HeaderName = v.pipe(
  v.string(),
  v.regex(HEADER_NAME, (i) => `not a valid HTTP header name: ${JSON.stringify(i.input)}`),
  v.toLowerCase(),
);
const UserId = v.pipe(
  v.string(),
  v.regex(USER_ID, (i) => `user id ${JSON.stringify(i.input)} must be 1-128 characters of A-Z a-z 0-9 . _ : @ / -`),
);

/** An integer, also given as a string (as it is after `${PORT}` substitution). */
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
/** A duration in seconds (defaults are written in seconds too: they pass through the same transform) (a number) or with a unit ("500ms", "30s", "10m", "1h"); output in milliseconds. 0 means none. */
const durationMessage = (i: { input: unknown }) =>
  `expected a duration such as 30, "30s", "10m" or "500ms", got ${JSON.stringify(i.input)}`;
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

const BackendUrl = v.pipe(
  v.string(),
  v.trim(),
  v.check((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === "http:" || u.protocol === "https:") && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, (i) => `expected an http:// or https:// URL without query, got ${JSON.stringify(i.input)}`),
  v.transform((s) => s.replace(/\/+$/, "")),
);

const PatternRule = v.strictObject({
  header: v.optional(HeaderName, "user-agent"),
  pattern: v.pipe(
    v.string(),
    v.check(
      (p) => compilePattern(p).ok,
      (i) => {
        const r = compilePattern(String(i.input));
        return r.ok ? "invalid regular expression" : `invalid regular expression: ${r.error}`;
      },
    ),
  ),
  user_id: UserId,
});

const UserIdMappings = v.strictObject({
  custom_header: v.optional(HeaderName, "x-memory-user-id"),
  header_patterns: v.optional(v.nullable(v.array(PatternRule)), []),
  default_user_id: v.optional(UserId, "default-dev"),
});

const Listen = v.strictObject({
  host: v.optional(v.pipe(v.string(), v.trim(), v.minLength(1, "must not be empty")), "127.0.0.1"),
  port: v.optional(Int(0, 65535), 8764),
  /** A client connection silent this long is closed (slow or stuck clients); a proxied request is exempt while its backend call runs long (see server.ts). */
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
  /** Patterns (re.match semantics) a custom-header value must match; empty: any well-formed id. */
  allowed_user_ids: v.optional(v.array(v.pipe(v.string(), v.check((p) => compilePattern(p).ok, (i) => {
    const r = compilePattern(String(i.input));
    return r.ok ? "invalid regular expression" : `invalid regular expression: ${r.error}`;
  }))), []),
  /** What a custom-header value outside allowed_user_ids gets: refused with 403, or ignored (pattern rules apply). */
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
  /** auto: readable text on a terminal, JSON lines otherwise (services, log collectors). */
  format: v.optional(v.picklist(["auto", "json", "text"], (i) => `expected auto, json or text, got ${JSON.stringify(i.input)}`), "auto"),
});

const Metrics = v.strictObject({
  /** GET /metrics (Prometheus), GET /memory-routing/stats and token counting. */
  enabled: v.optional(Bool, true),
  /** Distinct user ids with their own metrics label (configured ids always have one); the rest count as "other". */
  max_user_labels: v.optional(Int(1, 100_000), 100),
});

const Litellm = v.strictObject({
  /** Start LiteLLM as a child and supervise it (also --spawn-litellm). */
  spawn: v.optional(Bool, false),
  /** The LiteLLM executable (a name on PATH or a path), or a command with its arguments. */
  command: v.optional(v.union([v.pipe(v.string(), v.minLength(1)), v.pipe(v.array(v.string()), v.minLength(1))], "expected a command (string) or a list of strings"), "litellm"),
  /** The config file LiteLLM reads; default: the same file as memproxy. */
  config: v.optional(v.pipe(v.string(), v.minLength(1))),
  host: v.optional(v.pipe(v.string(), v.minLength(1)), "127.0.0.1"),
  port: v.optional(Int(1, 65535), 8765),
  /** Extra command-line arguments, e.g. ["--num_workers", "2"]. */
  args: v.optional(v.array(v.string()), []),
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
  metrics: v.optional(Metrics, {}),
});

/** memproxy's view of the shared file: its own keys strictly, LiteLLM's keys (model_list, ...) left alone. */
export const ConfigSchema = v.looseObject({
  user_id_mappings: v.optional(UserIdMappings, {}),
  litellm_backend_url: v.optional(
    v.union([BackendUrl, v.pipe(v.array(BackendUrl), v.minLength(1, "needs at least one URL"))], (i) =>
      `expected a URL or a list of URLs, got ${JSON.stringify(i.input)}`,
    ),
  ),
  memproxy: v.optional(MemproxySection, {}),
});

export type ConfigFile = v.InferOutput<typeof ConfigSchema>;
export type RoutingConfig = ConfigFile["user_id_mappings"];
export type PatternRuleConfig = RoutingConfig["header_patterns"] extends (infer T)[] | null ? T : never;
export type ForwardConfig = ConfigFile["memproxy"]["forward"];

/** The loaded configuration: the validated file plus where it came from. */
export interface Config {
  /** File path, or EMBEDDED_CONFIG_NAME. */
  readonly source: string;
  readonly routing: RoutingConfig & { header_patterns: PatternRuleConfig[] };
  readonly backends: string[];
  /** Whether litellm_backend_url was given; if not, the backend follows a spawned LiteLLM's port. */
  readonly backendExplicit: boolean;
  readonly litellm: ConfigFile["memproxy"]["litellm"];
  readonly listen: ConfigFile["memproxy"]["listen"];
  readonly forward: ForwardConfig;
  readonly access: ConfigFile["memproxy"]["access"];
  readonly limits: ConfigFile["memproxy"]["limits"];
  readonly backendPool: ConfigFile["memproxy"]["backends"];
  readonly shutdown: ConfigFile["memproxy"]["shutdown"];
  readonly reload: ConfigFile["memproxy"]["reload"];
  readonly logging: ConfigFile["memproxy"]["logging"];
  readonly metrics: ConfigFile["memproxy"]["metrics"];
}

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

function issueLine(issue: v.BaseIssue<unknown>): string {
  const path = (issue.path ?? []).map((p) => p.key as PathItem);
  if (issue.type === "strict_object" && path.length) {
    return `${formatPath(path)}: unknown setting ${JSON.stringify(path.at(-1))}`;
  }
  return `${formatPath(path)}: ${issue.message}`;
}

/**
 * Parses and validates configuration text.
 * @param text YAML text; an empty document means all defaults.
 * @param source the file name used in messages.
 * @param env environment for substitution (defaults to process.env).
 * @returns the configuration; throws ConfigError listing every problem.
 */
export function parseConfig(text: string, source: string, env = process.env): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(source, doc.errors.map((e) => `${source}: invalid YAML: ${e.message.split("\n")[0]}`));
  }
  const raw: unknown = doc.toJS() ?? {};
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(source, [`${source}: (top level): expected a mapping of settings`]);
  }
  const problems: string[] = [];
  const data: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const key of OWN_KEYS) {
    if (data[key] !== undefined && data[key] !== null) data[key] = substituteEnv(data[key], [key], env, problems);
    else delete data[key];
  }
  const result = v.safeParse(ConfigSchema, data, { abortEarly: false });
  if (!result.success) {
    // A value whose variable is missing was already reported; its type error would only repeat it.
    const reported = new Set(problems.map((p) => p.slice(0, p.indexOf(": "))));
    for (const line of result.issues.map(issueLine)) {
      if (!reported.has(line.slice(0, line.indexOf(": ")))) problems.push(line);
    }
  }
  if (problems.length || !result.success) throw new ConfigError(source, problems.map((p) => `${source}: ${p}`));
  const out = result.output;
  const url = out.litellm_backend_url;
  const litellm = out.memproxy.litellm;
  const backends = Array.isArray(url) ? url : url ? [url] : [litellmUrl(litellm)];
  return {
    source,
    routing: { ...out.user_id_mappings, header_patterns: out.user_id_mappings.header_patterns ?? [] },
    backends,
    backendExplicit: url !== undefined,
    litellm,
    listen: out.memproxy.listen,
    forward: out.memproxy.forward,
    access: out.memproxy.access,
    limits: out.memproxy.limits,
    backendPool: out.memproxy.backends,
    shutdown: out.memproxy.shutdown,
    reload: out.memproxy.reload,
    logging: out.memproxy.logging,
    metrics: out.memproxy.metrics,
  };
}

/** The URL of a LiteLLM started by memproxy (also the default backend: http://127.0.0.1:8765). */
export function litellmUrl(litellm: { host: string; port: number }): string {
  const host = litellm.host === "0.0.0.0" ? "127.0.0.1" : litellm.host === "::" ? "[::1]" : litellm.host.includes(":") ? `[${litellm.host}]` : litellm.host;
  return `http://${host}:${litellm.port}`;
}

/**
 * Loads the configuration from a file, or the embedded default when `path` is undefined.
 * @returns the configuration; throws ConfigError (also for a missing or unreadable file).
 */
export async function loadConfig(path?: string, env = process.env): Promise<Config> {
  if (path === undefined) return parseConfig(defaultConfigText, EMBEDDED_CONFIG_NAME, env);
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "file not found" : code === "EISDIR" ? "is a directory" : String(err);
    throw new ConfigError(path, [`${path}: cannot read config: ${why} (pass an existing YAML file to --config)`]);
  }
  return parseConfig(text, path, env);
}

/** The embedded default configuration's text (what `memproxy` uses without --config). */
export const DEFAULT_CONFIG_TEXT: string = defaultConfigText;
