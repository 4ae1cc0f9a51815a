// memproxy as a launchd agent (macOS): its property list, the agent that rotates its logs, the
// launchctl steps, and launchd's view of it.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import rotateTemplate from "../scripts/service/memproxy-logrotate.plist" with { type: "text" };
import template from "../scripts/service/memproxy.plist" with { type: "text" };
import type { Layout, ManagerState, Platform, ServiceEnv, UnitSpec } from "./service-platform.ts";
import { ServiceError, shellQuote, type Step } from "./service-plan.ts";
import { renderTemplate } from "./service-stack.ts";

/** launchd's name for the agent (and its plist's file name). */
export const LAUNCHD_LABEL = "local.memproxy";
/** A log file is rotated once it is over this size (and one older copy, <file>.1, is kept). */
export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;

/** The files of the launchd agent: ~/Library/LaunchAgents, ~/Library/Application Support/memproxy, ~/Library/Logs/memproxy. */
export function launchdLayout(env: ServiceEnv): Layout & { logDir: string; rotateFile: string } {
  const configDir = join(env.home, "Library", "Application Support", "memproxy");
  const agents = join(env.home, "Library", "LaunchAgents");
  return {
    unitFile: join(agents, `${LAUNCHD_LABEL}.plist`),
    rotateFile: join(agents, `${LAUNCHD_LABEL}.logrotate.plist`),
    configDir,
    envFile: join(configDir, "memproxy.env"),
    logDir: join(env.home, "Library", "Logs", "memproxy"),
  };
}

/** The launchd agent on this machine. */
export function launchd(env: ServiceEnv): Platform {
  const layout = launchdLayout(env);
  const domain = `gui/${env.uid}`;
  const target = `${domain}/${LAUNCHD_LABEL}`;
  const rotateTarget = `${target}.logrotate`;
  const errorLog = join(layout.logDir, "memproxy.error.log");
  return {
    manager: "launchd",
    tool: "launchctl",
    layout,
    unitWhat: "the launchd agent",
    unitLabel: "agent",
    logsHint: `tail -f ${shellQuote(join(layout.logDir, "memproxy.log"))} ${shellQuote(errorLog)}`,
    restartCommand: `launchctl kickstart -k gui/$(id -u)/${LAUNCHD_LABEL}`,
    // launchd has no sandbox settings for an agent.
    checkSandbox: async () => ({ userNamespaces: false }),
    render: (spec) => renderLaunchdPlist(spec, layout.logDir),
    programArgs: launchdProgramArgs,
    installSteps(spec: UnitSpec, fresh: boolean): Step[] {
      const hadRotate = existsSync(layout.rotateFile);
      return [
        { kind: "mkdir", path: layout.logDir, what: "the log folder" },
        { kind: "write", path: layout.unitFile, text: renderLaunchdPlist(spec, layout.logDir), mode: 0o644, what: "the launchd agent" },
        { kind: "write", path: layout.rotateFile, text: renderRotatePlist(layout.logDir), mode: 0o644, what: "the agent that rotates its logs" },
        // A loaded agent must be unloaded before its new plist can be loaded.
        ...(fresh ? [] : [{ kind: "run" as const, argv: ["launchctl", "bootout", target], mayFail: true }]),
        ...(hadRotate ? [{ kind: "run" as const, argv: ["launchctl", "bootout", rotateTarget], mayFail: true }] : []),
        { kind: "run", argv: ["launchctl", "enable", target], hint: LINT_HINT },
        { kind: "run", argv: ["launchctl", "bootstrap", domain, layout.unitFile], undo: ["launchctl", "bootout", target], hint: LINT_HINT },
        { kind: "run", argv: ["launchctl", "enable", rotateTarget], hint: LINT_HINT },
        { kind: "run", argv: ["launchctl", "bootstrap", domain, layout.rotateFile], undo: ["launchctl", "bootout", rotateTarget], hint: LINT_HINT },
      ];
    },
    uninstallSteps: () => [
      { kind: "run", argv: ["launchctl", "bootout", target], mayFail: true },
      { kind: "remove", path: layout.unitFile, what: "the launchd agent" },
      ...(existsSync(layout.rotateFile)
        ? [
            { kind: "run" as const, argv: ["launchctl", "bootout", rotateTarget], mayFail: true },
            { kind: "remove" as const, path: layout.rotateFile, what: "the agent that rotates its logs" },
          ]
        : []),
    ],
    async query(run): Promise<ManagerState> {
      const r = await run(["launchctl", "print", target]);
      if (r.code !== 0) return { summary: "launchd has not loaded the agent (launchctl print found no such job)", pid: null, details: tail(errorLog) };
      // launchctl print lists everything about the job; these lines answer "is it running?".
      const field = (name: string) => new RegExp(`^\\s*${name} = (.*)$`, "m").exec(r.stdout)?.[1]?.trim();
      const pid = Number(field("pid")) > 0 ? Number(field("pid")) : null;
      const summary = [`state ${field("state") ?? "unknown"}`, pid ? `pid ${pid}` : "", field("last exit code") ? `last exit code ${field("last exit code")}` : ""]
        .filter(Boolean)
        .join(", ");
      return { summary, pid, details: pid ? undefined : tail(errorLog) };
    },
    pathWarnings: () => [],
    afterInstall: () => [
      `Its log files are rotated hourly by ${LAUNCHD_LABEL}.logrotate once over ${LOG_ROTATE_BYTES / 1024 / 1024} MiB; the previous part is kept as <file>.1.`,
    ],
  };
}

const LINT_HINT = "Check the agent with 'plutil -lint' and run 'memproxy service install' again.";

/** Renders the launchd agent's property list. */
export function renderLaunchdPlist(spec: UnitSpec, logDir: string): string {
  return renderTemplate(template, {
    LABEL: LAUNCHD_LABEL,
    ENV_FILE: xmlEscape(spec.envFile),
    PROGRAM_ARGUMENTS: spec.argv.map((a) => `    <string>${xmlEscape(a)}</string>`).join("\n"),
    PATH: xmlEscape(spec.path),
    LOG_DIR: xmlEscape(logDir),
  });
}

/** Renders the property list of the agent that rotates the logs in `logDir`. */
export function renderRotatePlist(logDir: string): string {
  return renderTemplate(rotateTemplate, { LABEL: LAUNCHD_LABEL, MAX_BYTES: String(LOG_ROTATE_BYTES), LOG_DIR: xmlEscape(logDir) });
}

/** The program arguments (after the /bin/sh wrapper and the env file) of a plist that renderLaunchdPlist wrote. */
export function launchdProgramArgs(plist: string): string[] {
  const array = /<key>ProgramArguments<\/key>\s*<array>([\s\S]*?)<\/array>/.exec(plist)?.[1] ?? "";
  const all = [...array.matchAll(/<string>([\s\S]*?)<\/string>/g)].map((m) => xmlUnescape(m[1]!));
  return all.slice(4);
}

function tail(path: string): string | undefined {
  try {
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").slice(-10);
    return lines.join("\n").trim() ? `last lines of ${path}:\n${lines.join("\n")}` : undefined;
  } catch {
    return undefined;
  }
}

function xmlEscape(s: string): string {
  // Control characters other than tab and newline are not allowed in XML 1.0 at all.
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(s)) throw new ServiceError(`a value with control characters cannot go into a property list: ${JSON.stringify(s)}`);
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

function xmlUnescape(s: string): string {
  return s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, "&");
}
