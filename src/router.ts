// The MemoryRouter: a pure function from request headers to the user id whose memory a request uses.
import { USER_ID, USER_ID_RULE, type Config, type PatternRuleConfig, type RoutingConfig } from "./config.ts";
import type { HeaderMap } from "./http.ts";
import { compilePattern, compilePatternSet } from "./pattern.ts";
import { BUILTIN_RULES, GENERIC_PRODUCTS } from "./tools.ts";

/** Which layer decided: the custom header, the user's header_patterns, the built-in tool rules, the User-Agent's product, or the default. */
export type DecidedBy = "custom_header" | "pattern" | "builtin" | "derived" | "default";

/** The routing decision: the fields of `determine_user_id`'s result (configs and clients of the Python design read them), and which layer decided. */
export interface RoutingDecision {
  user_id: string;
  decided_by: DecidedBy;
  /** The rule that matched (the user's or a built-in one), as configured; null otherwise. */
  matched_pattern: PatternRuleConfig | null;
  /** The tool a built-in rule recognises ("Claude Code"); null otherwise. */
  tool: string | null;
  /** The User-Agent product a derived id comes from ("QwenCode"); null otherwise. */
  derived_from: string | null;
  custom_header_present: boolean;
  is_default: boolean;
}

/** Why a request cannot be routed: the custom header's value is malformed (400) or not allowed (403). */
export interface RoutingRejection {
  status: 400 | 403;
  message: string;
  /** The decision the rules give without the custom header: the id the request would have had (for logs). */
  without_header: RoutingDecision;
}

/** Who may choose which memory with the custom header (the `memproxy.access` settings). */
export type CustomHeaderPolicy = Pick<Config["access"], "custom_header" | "allowed_user_ids" | "on_disallowed">;

const OPEN_POLICY: CustomHeaderPolicy = { custom_header: true, allowed_user_ids: [], on_disallowed: "refuse" };

export type RoutingResult = { ok: true; decision: RoutingDecision } | { ok: false; rejection: RoutingRejection };

/**
 * How much of a header value the rules read: real User-Agents are far shorter, and the bound keeps the cost of
 * the most expensive pattern shapes (a long counted repetition after an unbounded loop) to milliseconds.
 */
export const MATCHED_LENGTH = 8192;
/** Marks a value cut at MATCHED_LENGTH: more follows, so an end anchor ($, \Z) cannot match at the cut. */
const CUT = "\u0000";

/** A compiled router: call it with the request headers (http.ts headerMap: lower-case names). */
export type Router = (headers: HeaderMap) => RoutingResult;

/** The router the server uses for `config`: its rules and its custom-header policy (also what `explain` shows). */
export function routerFor(config: Pick<Config, "routing" | "access">): Router {
  return compileRouter(config.routing, config.access);
}

/**
 * Compiles the routing rules once. Patterns were validated with the config; a bad one throws here.
 * @param config the `user_id_mappings` section.
 * @param policy whether the custom header is honoured, and which values it may carry.
 * @returns the router: custom header > the user's rules in order > the built-in rules in order (first match
 *   wins) > an id from the User-Agent's product > the default user id.
 */
export function compileRouter(config: RoutingConfig, policy: CustomHeaderPolicy = OPEN_POLICY): Router {
  const customHeader = policy.custom_header ? config.custom_header : null;
  const allowed = policy.allowed_user_ids.map((p, i) => {
    const compiled = compilePattern(p, { whole: true });
    if (!compiled.ok) throw new TypeError(`allowed_user_ids[${i}]: invalid regular expression: ${compiled.error}`);
    return compiled.matcher;
  });
  const ignoreDisallowed = policy.on_disallowed === "ignore";
  const rules = ruleLayers(config);
  const generic = config.derive_from_user_agent ? new Set([...GENERIC_PRODUCTS, ...config.generic_user_agents]) : null;
  const fallback = result({ user_id: config.default_user_id, decided_by: "default", is_default: true });

  /** The decision of the rules, the derivation and the default: what applies without the custom header. */
  const byRules = (headers: HeaderMap): Routed => {
    const matched = rules.first(headers);
    if (matched) return matched;
    if (generic) {
      const derived = deriveUserId(headers["user-agent"] ?? null, generic);
      if (derived) return result({ user_id: derived.id, decided_by: "derived", derived_from: derived.product });
    }
    return fallback;
  };

  return (headers) => {
    const explicit = customHeader === null ? undefined : headers[customHeader];
    if (explicit !== undefined) {
      if (!USER_ID.test(explicit)) {
        const message = `Invalid ${customHeader} header: the user id must be ${USER_ID_RULE} (got ${describe(explicit)})`;
        return { ok: false, rejection: { status: 400, message, without_header: byRules(headers).decision } };
      }
      if (!allowed.length || allowed.some((m) => m.test(explicit))) {
        return result({ user_id: explicit, decided_by: "custom_header", custom_header_present: true });
      }
      if (!ignoreDisallowed) {
        const message = `The ${customHeader} value ${JSON.stringify(explicit)} is not among the user ids this memproxy allows`;
        return { ok: false, rejection: { status: 403, message, without_header: byRules(headers).decision } };
      }
      // on_disallowed: ignore: the rules decide, as if the header were absent.
    }
    return byRules(headers);
  };
}

/** The user's rules, then the built-in ones, as one ordered list read in one pass per header. */
/** A decision that routes: what the rules give. */
type Routed = RoutingResult & { ok: true };

function ruleLayers(config: RoutingConfig): { first(headers: HeaderMap): Routed | undefined } {
  const all = [
    ...config.header_patterns.map((rule) => ({ rule, decided_by: "pattern" as const, tool: null })),
    ...(config.builtin_rules
      ? BUILTIN_RULES.map(({ header, pattern, user_id, tool }) => ({ rule: { header, pattern, user_id }, decided_by: "builtin" as const, tool }))
      : []),
  ];
  const answers = all.map(({ rule, decided_by, tool }) =>
    result({ user_id: rule.user_id, decided_by, matched_pattern: Object.freeze({ ...rule }), tool }),
  );
  // Rules are grouped by the header they read: each group is one pattern set over one header value, and the
  // lowest rule index over all groups wins (first match in the configured order).
  const byHeader = new Map<string, number[]>();
  all.forEach(({ rule }, i) => {
    const name = rule.header.toLowerCase();
    byHeader.set(name, [...(byHeader.get(name) ?? []), i]);
  });
  const groups = [...byHeader].map(([header, indexes]) => ({
    header,
    indexes,
    set: compilePatternSet(indexes.map((i) => all[i]!.rule.pattern)),
  }));
  return {
    first(headers) {
      let best = Infinity;
      for (const g of groups) {
        const value = headers[g.header];
        if (value === undefined) continue;
        const at = g.set.firstMatch(value.length > MATCHED_LENGTH ? value.slice(0, MATCHED_LENGTH) + CUT : value);
        if (at >= 0 && g.indexes[at]! < best) best = g.indexes[at]!;
      }
      return best === Infinity ? undefined : answers[best];
    },
  };
}

/**
 * The id a User-Agent's first product token gives (`QwenCode/0.15.10 (linux; x64)` → `qwencode`), normalised to
 * memory-id rules; none for a generic HTTP library or browser (curl, python-requests, Mozilla, Bun, ...).
 */
export function deriveUserId(userAgent: string | null, generic: ReadonlySet<string>): { id: string; product: string } | undefined {
  if (!userAgent) return undefined;
  const product = /^\s*([^\s/;(),]+)/.exec(userAgent)?.[1];
  if (!product || generic.has(product.toLowerCase())) return undefined;
  const id = product
    .toLowerCase()
    .replace(/[^a-z0-9_:-]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 100)
    .replace(/-+$/, "");
  return id ? { id, product: product.slice(0, 100) } : undefined;
}

function result(d: Partial<RoutingDecision> & Pick<RoutingDecision, "user_id" | "decided_by">): Routed {
  const decision: RoutingDecision = {
    user_id: d.user_id,
    decided_by: d.decided_by,
    matched_pattern: d.matched_pattern ?? null,
    tool: d.tool ?? null,
    derived_from: d.derived_from ?? null,
    custom_header_present: d.custom_header_present ?? false,
    is_default: d.is_default ?? false,
  };
  return Object.freeze({ ok: true as const, decision: Object.freeze(decision) });
}

/** Describes a rejected value without echoing it whole: it may be long or hold control characters. */
function describe(value: string): string {
  if (value.length === 0) return "an empty value";
  if (value.length > 100) return `${value.length} characters`;
  const printable = /^[\x20-\x7e]*$/.test(value);
  return printable ? JSON.stringify(value) : "a value with non-printable characters";
}
