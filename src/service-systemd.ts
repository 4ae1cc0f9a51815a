// memproxy as a systemd user service (Linux): the unit file, the systemctl steps, and systemd's view of it.
import { isAbsolute, join } from "node:path";
import template from "../scripts/service/memproxy.service" with { type: "text" };
import type { Layout, ManagerState, Platform, SandboxCheck, ServiceEnv, UnitSpec } from "./service-platform.ts";
import { oneLine } from "./service-platform.ts";
import type { Step } from "./service-plan.ts";
import { renderTemplate } from "./service-stack.ts";

const UNIT = "memproxy.service";
const NO_MANAGER_HINT =
  "Is a systemd user manager running for you (a login session, or 'loginctl enable-linger $USER')? Fix that and run 'memproxy service install' again.";

/** The files of the systemd service: XDG_CONFIG_HOME (or ~/.config)/systemd/user and .../memproxy. */
export function systemdLayout(env: ServiceEnv): Layout {
  const xdg = env.vars.XDG_CONFIG_HOME;
  const configHome = xdg && isAbsolute(xdg) ? xdg : join(env.home, ".config");
  const configDir = join(configHome, "memproxy");
  return { unitFile: join(configHome, "systemd", "user", UNIT), configDir, envFile: join(configDir, "memproxy.env") };
}

/** The systemd user service on this machine. */
export function systemd(env: ServiceEnv): Platform {
  const layout = systemdLayout(env);
  return {
    manager: "systemd",
    tool: "systemctl",
    layout,
    unitWhat: "the systemd user unit",
    unitLabel: "unit",
    logsHint: "journalctl --user -u memproxy -f",
    restartCommand: "systemctl --user restart memproxy",
    async checkSandbox(run): Promise<SandboxCheck> {
      // What systemd --user does for the unit's PrivateUsers=: a user namespace, with a mount namespace in it.
      const command = ["unshare", "--user", "--map-root-user", "--mount", "true"];
      const r = await run(command);
      if (r.code === 0) return { userNamespaces: true, command };
      return {
        userNamespaces: false,
        command,
        note:
          `your user cannot create user namespaces here ('${command.join(" ")}' failed: ${r.stderr.trim() || `exit ${r.code}`}), and systemd ` +
          `refuses to start a user service whose sandbox needs them: the unit keeps its system-call filters but not its file-system sandbox ` +
          `(read-only system and home, private /tmp). Where an administrator allows them (on Ubuntu 24.04: sysctl kernel.apparmor_restrict_unprivileged_userns=0), run 'memproxy service install' again.`,
      };
    },
    render: renderSystemdUnit,
    programArgs: systemdProgramArgs,
    installSteps(spec: UnitSpec, fresh: boolean): Step[] {
      return [
        { kind: "write", path: layout.unitFile, text: renderSystemdUnit(spec), mode: 0o644, what: "the systemd user unit" },
        { kind: "run", argv: ["systemctl", "--user", "daemon-reload"], hint: NO_MANAGER_HINT, undoLast: ["systemctl", "--user", "daemon-reload"] },
        // A reinstall leaves the unit enabled, as it was.
        { kind: "run", argv: ["systemctl", "--user", "enable", UNIT], hint: NO_MANAGER_HINT, undo: fresh ? ["systemctl", "--user", "disable", UNIT] : undefined },
        // restart, not start: a reinstall must pick up the new unit and config.
        {
          kind: "run",
          argv: ["systemctl", "--user", "restart", UNIT],
          hint: `systemd could not start memproxy; see why with: journalctl --user -u memproxy -n 50${fresh ? "" : "\nThe previous unit is back in place; start it again with: systemctl --user restart memproxy"}`,
        },
      ];
    },
    uninstallSteps: () => [
      { kind: "run", argv: ["systemctl", "--user", "disable", "--now", UNIT], mayFail: true },
      { kind: "remove", path: layout.unitFile, what: "the systemd user unit" },
      { kind: "run", argv: ["systemctl", "--user", "daemon-reload"], mayFail: true },
    ],
    async query(run): Promise<ManagerState> {
      const r = await run(["systemctl", "--user", "show", UNIT, "-p", "MainPID", "-p", "ActiveState", "-p", "SubState", "-p", "Result", "-p", "NRestarts"]);
      if (r.code !== 0) return { summary: `cannot ask systemd: 'systemctl --user show ${UNIT}' failed (exit ${r.code}): ${r.stderr.trim()}`, pid: null };
      const p = Object.fromEntries(r.stdout.split("\n").map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]));
      const pid = Number(p.MainPID) > 0 ? Number(p.MainPID) : null;
      const extra = [pid ? `main PID ${pid}` : "", p.Result && p.Result !== "success" ? `last result: ${p.Result}` : "", Number(p.NRestarts) > 0 ? `restarted ${p.NRestarts} times` : ""];
      const summary = [`${p.ActiveState ?? "unknown"} (${p.SubState ?? "unknown"})`, ...extra.filter(Boolean)].join(", ");
      if (pid && p.ActiveState === "active") return { summary, pid };
      const status = await run(["systemctl", "--user", "status", UNIT, "--no-pager", "--lines=10"]);
      return { summary, pid, details: status.stdout.trim() || undefined };
    },
    pathWarnings: (paths) =>
      paths
        .filter((p) => /^\/(var\/)?tmp(\/|$)/.test(p))
        .map((p) => `${p} is under ${p.startsWith("/var/") ? "/var/tmp" : "/tmp"}, which the service does not see (it has a private one: PrivateTmp=true); move it elsewhere, e.g. under your home.`),
    afterInstall: () => ["A user service stops when you log out; to keep it running: loginctl enable-linger $USER"],
  };
}

/** The template's block of settings that need a user namespace (marker comment lines included). */
const NAMESPACE_BLOCK = /^# --- user namespace:.*\n[\s\S]*?^# --- end of the settings that need a user namespace ---\n/m;

/** Renders the systemd user unit; without user namespaces, the settings that need one are commented out. */
export function renderSystemdUnit(spec: UnitSpec): string {
  const text = spec.userNamespaces
    ? template
    : template.replace(NAMESPACE_BLOCK, (block) =>
        block
          .replace(/^([A-Z])/gm, "#$1")
          .replace(/^# --- user namespace:.*$/m, "# --- left out: user namespaces were not available at install (see 'memproxy service install'); these settings need one ---"),
      );
  return renderTemplate(text, {
    EXEC_START: spec.argv.map((a) => systemdQuote(a)).join(" "),
    ENV_FILE: systemdEscape(oneLine(spec.envFile, "a systemd unit")),
    PATH_ASSIGNMENT: systemdQuote(`PATH=${spec.path}`, false),
  });
}

/** The ExecStart= arguments of a unit that renderSystemdUnit wrote. */
export function systemdProgramArgs(unit: string): string[] {
  const line = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? "";
  const args: string[] = [];
  for (const m of line.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) {
    const raw = m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : m[2]!;
    args.push(raw.replace(/%%/g, "%").replace(/\$\$/g, "$"));
  }
  return args;
}

/** systemd expands %-specifiers in every value and $VARIABLES in command lines: both must be doubled. */
function systemdEscape(s: string): string {
  return s.replace(/%/g, "%%");
}

/** One word of a command line (`commandLine`: `$` doubled too) or of an Environment= assignment. */
function systemdQuote(arg: string, commandLine = true): string {
  let escaped = systemdEscape(oneLine(arg, "a systemd unit"));
  if (commandLine) escaped = escaped.replace(/\$/g, "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(escaped)) return escaped;
  return `"${escaped.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}
