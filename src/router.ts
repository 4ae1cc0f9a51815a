// The MemoryRouter: a pure function from request headers to the user id whose memory a request uses.
import { USER_ID, type Config, type PatternRuleConfig, type RoutingConfig } from "./config.ts";
import { compilePattern } from "./pattern.ts";

/** The routing decision, shaped as the original design's `determine_user_id` result. */
export interface RoutingDecision {
  user_id: string;
  /** The rule that matched, as configured; null for the custom header or the default. */
  matched_pattern: PatternRuleConfig | null;
  custom_header_present: boolean;
  is_default: boolean;
}

/** Why a request cannot be routed: the custom header's value is malformed (400) or not allowed (403). */
export interface RoutingRejection {
  status: 400 | 403;
  message: string;
}

/** Who may choose which memory with the custom header (the `memproxy.access` settings). */
export type CustomHeaderPolicy = Pick<Config["access"], "custom_header" | "allowed_user_ids" | "on_disallowed">;

const OPEN_POLICY: CustomHeaderPolicy = { custom_header: true, allowed_user_ids: [], on_disallowed: "refuse" };

export type RoutingResult = { ok: true; decision: RoutingDecision } | { ok: false; rejection: RoutingRejection };

/** Anything with a case-insensitive `get`, such as `Headers`. */
export interface HeaderSource {
  get(name: string): string | null;
}

/** A compiled router: call it with the request headers. */
export type Router = (headers: HeaderSource) => RoutingResult;

/**
 * Compiles the routing rules once. Patterns were validated with the config; a bad one throws here.
 * @param config the `user_id_mappings` section.
 * @param policy whether the custom header is honoured, and which values it may carry.
 * @returns the router: custom header > patterns in order (first match wins) > default user id.
 */
export function compileRouter(
  config: RoutingConfig & { header_patterns: PatternRuleConfig[] },
  policy: CustomHeaderPolicy = OPEN_POLICY,
): Router {
  const customHeader = policy.custom_header ? config.custom_header : null;
  const allowed = policy.allowed_user_ids.map((p, i) => {
    const compiled = compilePattern(p);
    if (!compiled.ok) throw new TypeError(`allowed_user_ids[${i}]: invalid regular expression: ${compiled.error}`);
    return compiled.regex;
  });
  const ignoreDisallowed = policy.on_disallowed === "ignore";
  const rules = config.header_patterns.map((rule, i) => {
    const compiled = compilePattern(rule.pattern);
    if (!compiled.ok) throw new TypeError(`header_patterns[${i}].pattern: invalid regular expression: ${compiled.error}`);
    return { header: rule.header, regex: compiled.regex, rule: Object.freeze({ ...rule }) };
  });
  // A rule that reads the same header as the rule before it reuses that value: one lookup (and one
  // string made) for a run of user-agent rules rather than one per rule.
  const sameAsPrevious = rules.map((r, i) => i > 0 && r.header.toLowerCase() === rules[i - 1]!.header.toLowerCase());
  const fallback: RoutingResult = Object.freeze({
    ok: true,
    decision: Object.freeze({
      user_id: config.default_user_id,
      matched_pattern: null,
      custom_header_present: false,
      is_default: true,
    }),
  }) as RoutingResult;
  const matches: RoutingResult[] = rules.map(({ rule }) => Object.freeze({
    ok: true,
    decision: Object.freeze({ user_id: rule.user_id, matched_pattern: rule, custom_header_present: false, is_default: false }),
  }));

  return (headers) => {
    const explicit = customHeader === null ? null : headers.get(customHeader);
    if (explicit !== null) {
      if (!USER_ID.test(explicit)) {
        return {
          ok: false,
          rejection: {
            status: 400,
            message: `Invalid ${customHeader} header: the user id must be 1-128 characters of A-Z a-z 0-9 . _ : @ / - (got ${describe(explicit)})`,
          },
        };
      }
      if (!allowed.length || allowed.some((r) => r.test(explicit))) {
        return {
          ok: true,
          decision: { user_id: explicit, matched_pattern: null, custom_header_present: true, is_default: false },
        };
      }
      if (!ignoreDisallowed) {
        return {
          ok: false,
          rejection: { status: 403, message: `The ${customHeader} value ${JSON.stringify(explicit)} is not among the user ids this memproxy allows` },
        };
      }
      // on_disallowed: ignore — the pattern rules decide, as if the header were absent.
    }
    let value: string | null = null;
    for (let i = 0; i < rules.length; i++) {
      if (!sameAsPrevious[i]) value = headers.get(rules[i]!.header);
      if (value !== null && rules[i]!.regex.test(value)) return matches[i]!;
    }
    return fallback;
  };
}

/** Describes a rejected value without echoing it whole: it may be long or hold control characters. */
function describe(value: string): string {
  if (value.length === 0) return "an empty value";
  if (value.length > 128) return `${value.length} characters`;
  const printable = /^[\x20-\x7e]*$/.test(value);
  return printable ? JSON.stringify(value) : "a value with non-printable characters";
}
