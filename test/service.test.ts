// `memproxy service install|uninstall`: systemd and launchd units written into a temporary HOME, with
// stand-ins for systemctl/launchctl (support/service-sandbox.ts).
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { DEFAULT_CONFIG_TEXT, parseConfig } from "../src/config.ts";
import { analyzeChain, parseLitellmYaml } from "../src/litellm-config.ts";
import { parseEnvFile } from "../src/service-env-file.ts";
import { launchdProgramArgs, serviceCommand, systemdProgramArgs } from "../src/service.ts";
import { compiledBinary } from "./support/memproxy.ts";
import { runToEnd } from "./support/process.ts";
import { linuxFiles, macFiles, PROGRAM, sandbox } from "./support/service-sandbox.ts";

const ENV_PRINTER = join(import.meta.dir, "support", "service-env-fixture.ts");
const SYSTEMD_ANALYZE = Bun.which("systemd-analyze");
const KEYS = ["OPENAI_API_KEY", "SUPERMEMORY_API_KEY", "ANTHROPIC_API_KEY"];

/** Parses a property list with the platform's own parser (plutil on macOS, else Python's plistlib). */
async function parsePlist(path: string): Promise<any> {
  const cmd = Bun.which("plutil")
    ? ["plutil", "-convert", "json", "-o", "-", path]
    : ["python3", "-c", "import json, plistlib, sys; print(json.dumps(plistlib.load(open(sys.argv[1], 'rb'))))", path];
  const { stdout, stderr, code } = await runToEnd(cmd);
  if (code !== 0) throw new Error(`${cmd[0]} rejected ${path}:\n${stderr}`);
  return JSON.parse(stdout);
}

/** Runs systemd-analyze (verify or security) on a unit file as a user unit would be; returns exit code and output. */
async function systemdAnalyze(args: string[], root: string): Promise<{ code: number; output: string }> {
  const runtime = join(root, "runtime");
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const { stdout, stderr, code } = await runToEnd([SYSTEMD_ANALYZE!, ...args], { env: { ...process.env, XDG_RUNTIME_DIR: runtime } });
  return { code, output: stdout + stderr };
}

/** `systemd-analyze verify --user`'s complaints about a unit ("" when none). */
async function systemdVerify(unit: string, root: string): Promise<string> {
  const r = await systemdAnalyze(["verify", "--user", unit], root);
  // verify reports some problems (an unknown Restart= value, say) only as warnings, with exit code 0.
  return r.code === 0 && !r.output.trim() ? "" : `exit ${r.code}\n${r.output}`;
}

/** The lines printed under "would write <what>:" by --dry-run, unindented. */
function shownFile(out: string, what: string): string {
  const lines = out.split("\n");
  const start = lines.findIndex((l) => l.startsWith(`would write ${what}:`));
  const body: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!l.startsWith("    ") && l !== "") break;
    body.push(l.slice(4));
  }
  return body.join("\n").trimEnd();
}

describe("service install on Linux (systemd user unit)", () => {
  test("a first install writes a config that starts LiteLLM with models through Supermemory, an env file with a generated master key, and the unit", async () => {
    using s = sandbox("linux");
    s.vars.OPENAI_API_KEY = "sk-from-the-shell-never-in-a-unit";
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);

    // The env file: private, in the common format, every variable the config reads, the master key generated.
    expect(statSync(f.envFile).mode & 0o777).toBe(0o600);
    const envFile = parseEnvFile(readFileSync(f.envFile, "utf8"));
    expect(envFile.problems).toEqual([]);
    expect(envFile.vars.LITELLM_MASTER_KEY).toMatch(/^sk-[0-9a-f]{64}$/);
    for (const k of KEYS) expect(envFile.vars[k]).toBe("");

    // memproxy's side: LiteLLM started from its absolute path, the default routing rules.
    const text = readFileSync(f.config, "utf8");
    const config = parseConfig(text, f.config, envFile.vars);
    expect(config.litellm.spawn).toBe(true);
    expect(config.litellm.command).toBe(s.litellm);
    expect(config.backends).toEqual(["http://127.0.0.1:8765"]);
    expect(JSON.stringify(config.routing)).toBe(JSON.stringify(parseConfig(DEFAULT_CONFIG_TEXT, "default", {}).routing));
    // LiteLLM's side: every model through the router with Supermemory's key, id forwarding on, the key from the env file.
    const raw = parse(text);
    for (const m of raw.model_list) {
      expect(m.litellm_params.api_base).toMatch(/^https:\/\/api\.supermemory\.ai\/v3\/https:\/\//);
      expect(m.litellm_params.extra_headers).toEqual({ "x-supermemory-api-key": "os.environ/SUPERMEMORY_API_KEY" });
    }
    expect(raw.general_settings).toMatchObject({ master_key: "os.environ/LITELLM_MASTER_KEY", forward_client_headers_to_llm_api: true });
    const report = analyzeChain(parseLitellmYaml(text), { ...envFile.vars, OPENAI_API_KEY: "sk-x", ANTHROPIC_API_KEY: "sk-ant-x", SUPERMEMORY_API_KEY: "sm_x" });
    expect(report.problems.filter((p) => p.severity === "error")).toEqual([]);

    // The unit: memproxy with the config, the env file, and a PATH of only what it needs.
    const unit = readFileSync(f.unit, "utf8");
    expect(systemdProgramArgs(unit)).toEqual([...PROGRAM, "--config", f.config]);
    expect(unit).toContain(`EnvironmentFile=-${f.envFile.replace(/%/g, "%%")}\n`);
    expect(unit).toContain(`\nEnvironment=PATH=${dirname(process.execPath)}:${s.bin}:/usr/local/bin:/usr/bin:/bin\n`);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^WantedBy=default\.target$/m);
    expect(unit).toMatch(/^PrivateUsers=true$/m);
    expect(unit).not.toContain("sk-from-the-shell");
    expect(unit).not.toContain("{{");

    expect(s.calls()).toEqual([
      ["systemctl", "--user", "daemon-reload"],
      ["systemctl", "--user", "enable", "memproxy.service"],
      ["systemctl", "--user", "restart", "memproxy.service"],
    ]);
    expect(s.out).toContain(`LiteLLM:  ${s.litellm} (on PATH), started by memproxy`);
    expect(s.out).toContain(`Still empty in ${f.envFile}: ${KEYS.join(", ")}.`);
    expect(s.out).toContain("systemctl --user restart memproxy");
    expect(s.out).toContain("journalctl --user -u memproxy");
    expect(s.out + s.err).not.toContain(envFile.vars.LITELLM_MASTER_KEY);
  });

  test.skipIf(!SYSTEMD_ANALYZE)("the unit passes systemd-analyze verify", async () => {
    using s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    expect(await systemdVerify(linuxFiles(s.home).unit, s.root)).toBe("");
  });

  // Before the sandbox, the unit rated 9.4 UNSAFE. MemoryDenyWriteExecute= (0.1) is left out on purpose: it turns off Bun's JIT.
  test.skipIf(!SYSTEMD_ANALYZE)("systemd-analyze security rates the unit's exposure at most 2.0 (OK)", async () => {
    using s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    const r = await systemdAnalyze(["security", "--offline=yes", "--threshold=20", linuxFiles(s.home).unit], s.root);
    const score = Number(/Overall exposure level for memproxy\.service: ([\d.]+)/.exec(r.output)?.[1]);
    expect(r.code).toBe(0);
    expect(score).toBeLessThanOrEqual(2.0);
  });

  test.skipIf(!SYSTEMD_ANALYZE)("without user namespaces, the settings that need one are left out, with a warning; the rest still verifies and rates 6.5 at most", async () => {
    using s = sandbox("linux");
    s.vars.MEMPROXY_FIXTURE_USERNS = "1";
    expect(await s.run("install")).toBe(0);
    expect(s.err).toContain("your user cannot create user namespaces here ('unshare --user --map-root-user --mount true' failed: unshare: write failed");
    expect(s.err).toContain("kernel.apparmor_restrict_unprivileged_userns=0");
    const f = linuxFiles(s.home);
    const unit = readFileSync(f.unit, "utf8");
    for (const setting of ["PrivateUsers=true", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=true", "CapabilityBoundingSet=", "ProtectClock=true"]) {
      expect(unit).toContain(`\n#${setting}\n`);
    }
    for (const setting of ["NoNewPrivileges=true", "SystemCallFilter=@system-service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX"]) expect(unit).toContain(`\n${setting}\n`);
    expect(unit).toContain("# --- left out: user namespaces were not available at install");
    expect(await systemdVerify(f.unit, s.root)).toBe("");
    const r = await systemdAnalyze(["security", "--offline=yes", "--threshold=20", f.unit], s.root);
    expect(Number(/Overall exposure level for memproxy\.service: ([\d.]+)/.exec(r.output)?.[1])).toBeLessThanOrEqual(6.5);
  });

  test("a reinstall keeps an edited config and env file, rewrites the unit and restarts", async () => {
    using s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);
    writeFileSync(f.config, "memproxy:\n  listen:\n    port: 9999\n");
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk-kept\n");
    writeFileSync(f.unit, "stale");
    s.reset();

    expect(await s.run("install")).toBe(0);
    expect(readFileSync(f.config, "utf8")).toBe("memproxy:\n  listen:\n    port: 9999\n");
    // That config does not read LITELLM_MASTER_KEY: nothing to generate.
    expect(readFileSync(f.envFile, "utf8")).toBe("OPENAI_API_KEY=sk-kept\n");
    expect(systemdProgramArgs(readFileSync(f.unit, "utf8"))).toEqual([...PROGRAM, "--config", f.config]);
    expect(s.out).toContain("http://127.0.0.1:9999");
    expect(s.err).toContain("does not start LiteLLM");
    expect(s.calls().map((c) => c[2])).toEqual(["daemon-reload", "enable", "restart"]);
  });

  test("an env file without LITELLM_MASTER_KEY gets one generated, its other lines kept; an existing key is kept", async () => {
    using s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(dirname(f.envFile), { recursive: true });
    writeFileSync(f.envFile, "# mine\nOPENAI_API_KEY=sk-mine\nLITELLM_MASTER_KEY=\n", { mode: 0o600 });
    expect(await s.run("install")).toBe(0);
    const after = readFileSync(f.envFile, "utf8");
    const key = parseEnvFile(after).vars.LITELLM_MASTER_KEY!;
    expect(key).toMatch(/^sk-[0-9a-f]{64}$/);
    expect(after).toBe(`# mine\nOPENAI_API_KEY=sk-mine\nLITELLM_MASTER_KEY=${key}\n`);
    expect(s.out).toContain("LITELLM_MASTER_KEY generated now");
    expect(s.out).toContain("Still empty in");
    expect(s.out).toContain("SUPERMEMORY_API_KEY, ANTHROPIC_API_KEY.");

    s.reset();
    expect(await s.run("install")).toBe(0);
    expect(readFileSync(f.envFile, "utf8")).toBe(after);
    expect(s.out).not.toContain("generated now");
  });

  test("an env file systemd and sh would read differently is refused, line by line, and nothing is written", async () => {
    using s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(dirname(f.envFile), { recursive: true });
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk a b\nexport X=1\nY=\"a$b\"\n", { mode: 0o600 });
    expect(await s.run("install")).toBe(1);
    expect(s.err).toContain(`${f.envFile}:1: OPENAI_API_KEY: this value needs quoting`);
    expect(s.err).toContain(`${f.envFile}:2: 'export X' is not a variable name: remove 'export'`);
    expect(s.err).toContain(`${f.envFile}:3: Y: an unescaped $ inside double quotes`);
    expect(s.err).toContain("the service was not installed");
    expect(existsSync(f.config) || existsSync(f.unit)).toBe(false);
    expect(s.calls()).toEqual([]);
  });

  test("an env file others can read gets a warning with the chmod to run", async () => {
    using s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(join(s.home, ".config", "memproxy"), { recursive: true });
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk-x\nLITELLM_MASTER_KEY=sk-0123456789abcdef0123456789abcdef\n");
    chmodSync(f.envFile, 0o644);
    expect(await s.run("install")).toBe(0);
    expect(s.err).toContain("others can read it (mode 644)");
    expect(s.err).toContain("chmod 600");
  });

  test("XDG_CONFIG_HOME places the config and the unit", async () => {
    using s = sandbox("linux");
    const xdg = join(s.root, "xdg");
    s.vars.XDG_CONFIG_HOME = xdg;
    expect(await s.run("install")).toBe(0);
    expect(existsSync(join(xdg, "memproxy", "config.yaml"))).toBe(true);
    expect(existsSync(join(xdg, "systemd", "user", "memproxy.service"))).toBe(true);
    expect(existsSync(join(s.home, ".config"))).toBe(false);
  });

  test("--config FILE is resolved, validated with the env file's variables, and referenced, not copied", async () => {
    using s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(join(s.home, ".config", "memproxy"), { recursive: true });
    writeFileSync(f.envFile, "MEMPROXY_PORT=8999\n", { mode: 0o600 });
    writeFileSync(join(s.root, "team.yaml"), "memproxy:\n  listen:\n    port: ${MEMPROXY_PORT}\n  litellm:\n    spawn: true\n");
    expect(await s.run("install", "--config", "team.yaml")).toBe(0);
    expect(systemdProgramArgs(readFileSync(f.unit, "utf8"))).toEqual([...PROGRAM, "--config", join(s.root, "team.yaml")]);
    // LiteLLM's folder goes on the unit's PATH, since the config names it without a path.
    expect(readFileSync(f.unit, "utf8")).toContain(`PATH=${dirname(process.execPath)}:${s.bin}:/usr/local/bin`);
    expect(existsSync(f.config)).toBe(false);
    expect(s.out).toContain("http://127.0.0.1:8999");
  });

  test("an invalid or missing --config installs nothing and says why", async () => {
    using s = sandbox("linux");
    writeFileSync(join(s.root, "bad.yaml"), "memproxy:\n  listen:\n    port: 70000\n");
    expect(await s.run("install", "--config", "bad.yaml")).toBe(1);
    expect(s.err).toContain(`${join(s.root, "bad.yaml")}: memproxy.listen.port: must be at most 65535`);
    expect(s.err).toContain("the service was not installed");

    // The service will not see the shell's variables, only the env file's.
    s.vars.ONLY_IN_THE_SHELL = "8999";
    writeFileSync(join(s.root, "shell.yaml"), "memproxy:\n  listen:\n    port: ${ONLY_IN_THE_SHELL}\n");
    expect(await s.run("install", "--config", "shell.yaml")).toBe(1);
    expect(s.err).toContain("environment variable ONLY_IN_THE_SHELL is not set");
    expect(s.err).toContain(`put them in ${linuxFiles(s.home).envFile}`);

    expect(await s.run("install", "--config", "missing.yaml")).toBe(1);
    expect(s.err).toContain(`${join(s.root, "missing.yaml")}: cannot read config: file not found`);
    expect(existsSync(join(s.home, ".config"))).toBe(false);
    expect(s.calls()).toEqual([]);
  });

  test("--dry-run prints every file in full (the generated key as <generated>) and every command, and writes and runs nothing", async () => {
    using s = sandbox("linux");
    expect(await s.run("install", "--dry-run")).toBe(0);
    const f = linuxFiles(s.home);
    const shown = s.out;
    expect(shown).toContain("checked: unshare --user --map-root-user --mount true: user namespaces available\n");
    expect(shown).toContain(`would write the config (memproxy and LiteLLM): ${f.config} (mode 644)`);
    expect(shown).toContain(`would write the file for API keys (NAME=value lines, mode 600): ${f.envFile} (mode 600)`);
    expect(shown).toContain("    LITELLM_MASTER_KEY=<generated>\n");
    expect(shown).not.toMatch(/sk-[0-9a-f]{64}/);
    expect(shown).toContain("would run: systemctl --user daemon-reload\nwould run: systemctl --user enable memproxy.service\nwould run: systemctl --user restart memproxy.service\n");
    expect(shown).toContain(`Still empty in ${f.envFile}: ${KEYS.join(", ")}.`);
    expect(existsSync(join(s.home, ".config"))).toBe(false);
    expect(s.calls()).toEqual([]);

    // What it printed is exactly what an install writes (the key aside).
    expect(await s.run("install")).toBe(0);
    expect(shownFile(shown, "the config (memproxy and LiteLLM)")).toBe(readFileSync(f.config, "utf8").trimEnd());
    expect(shownFile(shown, "the systemd user unit")).toBe(readFileSync(f.unit, "utf8").trimEnd());
    const envText = readFileSync(f.envFile, "utf8");
    expect(shownFile(shown, "the file for API keys (NAME=value lines, mode 600)")).toBe(envText.replace(/sk-[0-9a-f]{64}/, "<generated>").trimEnd());
  });

  test("--dry-run shows an existing env file it rewrites with every value redacted", async () => {
    using s = sandbox("linux");
    const f = linuxFiles(s.home);
    mkdirSync(dirname(f.envFile), { recursive: true });
    writeFileSync(f.envFile, "OPENAI_API_KEY=sk-secret-value\n", { mode: 0o600 });
    expect(await s.run("install", "--dry-run")).toBe(0);
    expect(s.out).toContain("    OPENAI_API_KEY=<redacted>\n    LITELLM_MASTER_KEY=<generated>\n");
    expect(s.out).not.toContain("sk-secret-value");
  });

  test("without litellm installed, install says how to install it and writes `litellm` for the command", async () => {
    using s = sandbox("linux", { litellm: false });
    expect(await s.run("install")).toBe(0);
    expect(s.err).toContain("'litellm' was not found");
    expect(s.err).toContain("pip install 'litellm[proxy]'");
    expect(s.err).toContain("scripts/setup-litellm.sh");
    expect(parse(readFileSync(linuxFiles(s.home).config, "utf8")).memproxy.litellm.command).toBe("litellm");
  });

  test("a pyenv shim is resolved to the real litellm, and memproxy's cache is searched, newest version first", async () => {
    using s = sandbox("linux", { litellm: false });
    const shims = join(s.root, "pyenv", "shims");
    const real = join(s.root, "pyenv", "versions", "3.12.1", "bin", "litellm");
    mkdirSync(shims, { recursive: true });
    mkdirSync(join(s.root, "pyenv", "libexec"));
    writeFileSync(join(shims, "litellm"), "#!/bin/sh\nexit 1\n", { mode: 0o755 });
    writeFileSync(join(s.root, "pyenv", "libexec", "pyenv"), `#!/bin/sh\n[ "$1 $2" = "which litellm" ] && echo '${real}'\n`, { mode: 0o755 });
    mkdirSync(dirname(real), { recursive: true });
    writeFileSync(real, "#!/bin/sh\n", { mode: 0o755 });
    s.vars.PATH = `${shims}:${s.vars.PATH}`;
    expect(await s.run("install", "--dry-run")).toBe(0);
    expect(s.out).toContain(`    command: ${real}\n`);
    expect(s.out).toContain(`LiteLLM: ${real} (through pyenv)`);
    expect(s.out).toContain(`with PATH=${dirname(process.execPath)}:${dirname(real)}:/usr/local/bin:/usr/bin:/bin`);
    expect(s.out).not.toContain(shims);

    using t = sandbox("linux", { litellm: false });
    for (const v of ["1.9.0", "1.108.7", "1.10.2"]) {
      mkdirSync(join(t.home, ".cache", "memproxy", `litellm-${v}`, "venv", "bin"), { recursive: true });
      writeFileSync(join(t.home, ".cache", "memproxy", `litellm-${v}`, "venv", "bin", "litellm"), "#!/bin/sh\n", { mode: 0o755 });
    }
    expect(await t.run("install", "--dry-run")).toBe(0);
    expect(t.out).toContain(`litellm-1.108.7/venv/bin/litellm (installed by scripts/setup-litellm.sh)`);
  });

  test("paths under /tmp get a warning: the service has a private /tmp", async () => {
    using s = sandbox("linux");
    expect(await s.run("install", "--dry-run")).toBe(0);
    expect(s.out).toContain(`warning: ${linuxFiles(s.home).config} is under /tmp, which the service does not see`);
  });

  test("without systemctl on PATH nothing is written, and the message says how to run memproxy instead", async () => {
    using s = sandbox("linux");
    s.vars.PATH = join(s.root, "empty");
    expect(await s.run("install")).toBe(1);
    expect(s.err).toContain("systemctl was not found on PATH");
    expect(s.err).toContain("--config");
    expect(existsSync(join(s.home, ".config"))).toBe(false);
  });

  test("without a systemd user manager, install fails, says what to do, and removes everything it wrote", async () => {
    using s = sandbox("linux");
    s.vars.MEMPROXY_FIXTURE_FAIL = "daemon-reload";
    expect(await s.run("install")).toBe(1);
    expect(s.err).toContain("'systemctl --user daemon-reload' failed (exit 1): Failed to connect to bus");
    expect(s.err).toContain("loginctl enable-linger");
    expect(s.err).toContain("Undid what this install had done:");
    expect(s.err).toContain(`removed ${linuxFiles(s.home).config}`);
    expect(s.err).not.toContain("left behind");
    expect(existsSync(join(s.home, ".config"))).toBe(false);
  });

  test("a failed restart undoes the enable and the files, then reloads systemd; what cannot be undone is listed", async () => {
    using s = sandbox("linux");
    s.vars.MEMPROXY_FIXTURE_FAIL = "restart";
    expect(await s.run("install")).toBe(1);
    expect(s.calls()).toEqual([
      ["systemctl", "--user", "daemon-reload"],
      ["systemctl", "--user", "enable", "memproxy.service"],
      ["systemctl", "--user", "restart", "memproxy.service"],
      ["systemctl", "--user", "disable", "memproxy.service"],
      ["systemctl", "--user", "daemon-reload"],
    ]);
    expect(existsSync(join(s.home, ".config"))).toBe(false);

    // A reinstall whose restart fails gets the previous unit back; an undo that fails is listed with its command.
    using t = sandbox("linux");
    expect(await t.run("install")).toBe(0);
    const f = linuxFiles(t.home);
    writeFileSync(f.unit, "# the previous unit\n");
    t.vars.MEMPROXY_FIXTURE_FAIL = "restart";
    expect(await t.run("install")).toBe(1);
    expect(readFileSync(f.unit, "utf8")).toBe("# the previous unit\n");
    expect(existsSync(f.config) && existsSync(f.envFile)).toBe(true);
    expect(t.err).toContain("The previous unit is back in place");

    using u = sandbox("linux");
    u.vars.MEMPROXY_FIXTURE_FAIL = "restart,disable";
    expect(await u.run("install")).toBe(1);
    expect(u.err).toContain("Could not undo everything; left behind, to remove by hand:\n  systemctl --user disable memproxy.service    # failed: Failed to connect to bus");
  });
});

describe("service install on macOS (launchd agent)", () => {
  test("writes a property list that parses, with restart on failure, logs in ~/Library/Logs and no keys in it", async () => {
    using s = sandbox("darwin");
    s.vars.OPENAI_API_KEY = "sk-from-the-shell-never-in-a-plist";
    expect(await s.run("install")).toBe(0);
    const f = macFiles(s.home);
    expect(parse(readFileSync(f.config, "utf8")).memproxy.litellm).toMatchObject({ spawn: true, command: s.litellm });
    expect(statSync(f.envFile).mode & 0o777).toBe(0o600);
    expect(statSync(f.logDir).isDirectory()).toBe(true);

    const plist = await parsePlist(f.plist);
    expect(plist.Label).toBe("local.memproxy");
    expect(plist.ProgramArguments.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(plist.ProgramArguments.slice(3)).toEqual([f.envFile, ...PROGRAM, "--config", f.config]);
    expect(launchdProgramArgs(readFileSync(f.plist, "utf8"))).toEqual([...PROGRAM, "--config", f.config]);
    expect(plist.KeepAlive).toEqual({ SuccessfulExit: false });
    expect(plist.RunAtLoad).toBe(true);
    expect(plist.StandardOutPath).toBe(join(f.logDir, "memproxy.log"));
    expect(plist.StandardErrorPath).toBe(join(f.logDir, "memproxy.error.log"));
    expect(plist.EnvironmentVariables).toEqual({ PATH: `${dirname(process.execPath)}:${s.bin}:/usr/local/bin:/usr/bin:/bin` });
    expect(readFileSync(f.plist, "utf8")).not.toContain("sk-from-the-shell");

    const rotate = await parsePlist(f.rotatePlist);
    expect(rotate.Label).toBe("local.memproxy.logrotate");
    expect(rotate.StartInterval).toBe(3600);
    expect(rotate.ProgramArguments.slice(4)).toEqual([String(10 * 1024 * 1024), join(f.logDir, "memproxy.log"), join(f.logDir, "memproxy.error.log")]);

    expect(s.calls()).toEqual([
      ["launchctl", "enable", "gui/501/local.memproxy"],
      ["launchctl", "bootstrap", "gui/501", f.plist],
      ["launchctl", "enable", "gui/501/local.memproxy.logrotate"],
      ["launchctl", "bootstrap", "gui/501", f.rotatePlist],
    ]);
    expect(s.out).toContain("rotated hourly by local.memproxy.logrotate");
    expect(s.out).toContain("launchctl kickstart -k gui/$(id -u)/local.memproxy");
    s.reset();
    expect(await s.run("install")).toBe(0);
    expect(s.calls().slice(0, 2)).toEqual([
      ["launchctl", "bootout", "gui/501/local.memproxy"],
      ["launchctl", "bootout", "gui/501/local.memproxy.logrotate"],
    ]);
  });

  test("the agent's command loads the env file (values with $, quotes and spaces) and runs memproxy with the config", async () => {
    using s = sandbox("darwin");
    const f = macFiles(s.home);
    mkdirSync(dirname(f.envFile), { recursive: true });
    const values = { OPENAI_API_KEY: "sk-loaded-from-env-file", TRICKY: `a $HOME "b" it's \\ \`c\``, LITELLM_MASTER_KEY: "sk-0123456789abcdef0123456789abcdef" };
    writeFileSync(f.envFile, `# keys\nOPENAI_API_KEY=sk-loaded-from-env-file\nTRICKY="a \\$HOME \\"b\\" it's \\\\ \\\`c\\\`"\nLITELLM_MASTER_KEY=${values.LITELLM_MASTER_KEY}\n`, { mode: 0o600 });
    expect(parseEnvFile(readFileSync(f.envFile, "utf8")).vars).toEqual(values);
    const env = { platform: "darwin", home: s.home, vars: s.vars, uid: 501, program: [process.execPath, ENV_PRINTER], cwd: s.root };
    expect(await serviceCommand(["install"], s.io, env)).toBe(0);

    // Run exactly what launchd would run.
    const { ProgramArguments } = await parsePlist(f.plist);
    const { stdout, stderr, code } = await runToEnd(ProgramArguments, { env: { PATH: "/usr/bin:/bin", HOME: "/h", MEMPROXY_FIXTURE_PRINT: Object.keys(values).join(",") } });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ args: ["--config", f.config], env: values });
  });

  test("the rotation agent's script copies a log over the limit to <file>.1 and empties it, and an appending writer goes on at its start", async () => {
    using s = sandbox("darwin");
    expect(await s.run("install")).toBe(0);
    const f = macFiles(s.home);
    const log = join(f.logDir, "memproxy.log");
    const { ProgramArguments } = await parsePlist(f.rotatePlist);
    const rotate = async () => {
      // The limit lowered to 100 bytes; everything else as launchd runs it.
      const argv = [...ProgramArguments.slice(0, 4), "100", ...ProgramArguments.slice(5)];
      const { stderr, code } = await runToEnd(argv, { env: { PATH: "/usr/bin:/bin" } });
      expect(stderr).toBe("");
      expect(code).toBe(0);
    };
    // A writer holding the file open for appending, as launchd holds memproxy's stdout (O_APPEND); it
    // acknowledges each line it wrote on its own stdout.
    const writer = Bun.spawn(["/bin/sh", "-c", 'exec 3>&1 >>"$0"; while IFS= read -r l; do echo "$l"; echo ok >&3; done', log], { stdin: "pipe", stdout: "pipe" });
    const acks = writer.stdout.getReader();
    const old = Array.from({ length: 10 }, (_, i) => `old line ${i} ${"x".repeat(20)}`);
    const lineWritten = async (line: string) => {
      writer.stdin.write(`${line}\n`);
      await writer.stdin.flush();
      expect(new TextDecoder().decode((await acks.read()).value)).toBe("ok\n");
    };
    for (const l of old) await lineWritten(l);
    await rotate();
    await lineWritten("new line");
    writer.stdin.end();
    expect(await writer.exited).toBe(0);

    expect(readFileSync(`${log}.1`, "utf8")).toBe(old.join("\n") + "\n");
    expect(readFileSync(log, "utf8")).toBe("new line\n");
    // Under the limit: left alone. A missing file (the error log) is skipped.
    await rotate();
    expect(readFileSync(log, "utf8")).toBe("new line\n");
    expect(existsSync(join(f.logDir, "memproxy.error.log.1"))).toBe(false);
  });
});

describe("service uninstall", () => {
  test("stops and removes the unit and keeps the config and the env file", async () => {
    using s = sandbox("linux");
    expect(await s.run("install")).toBe(0);
    const f = linuxFiles(s.home);
    s.reset();
    expect(await s.run("uninstall", "--dry-run")).toBe(0);
    expect(s.out).toContain(`would remove the systemd user unit: ${f.unit}`);
    expect(existsSync(f.unit)).toBe(true);
    expect(s.calls()).toEqual([]);

    expect(await s.run("uninstall")).toBe(0);
    expect(existsSync(f.unit)).toBe(false);
    expect(existsSync(f.config) && existsSync(f.envFile)).toBe(true);
    expect(s.calls()).toEqual([
      ["systemctl", "--user", "disable", "--now", "memproxy.service"],
      ["systemctl", "--user", "daemon-reload"],
    ]);
    s.reset();
    expect(await s.run("uninstall")).toBe(0);
    expect(s.out).toContain("not installed");
  });

  test("on macOS boots both agents out and removes their plists", async () => {
    using s = sandbox("darwin");
    expect(await s.run("install")).toBe(0);
    s.reset();
    expect(await s.run("uninstall")).toBe(0);
    const f = macFiles(s.home);
    expect(existsSync(f.plist) || existsSync(f.rotatePlist)).toBe(false);
    expect(s.calls()).toEqual([
      ["launchctl", "bootout", "gui/501/local.memproxy"],
      ["launchctl", "bootout", "gui/501/local.memproxy.logrotate"],
    ]);
  });

  test("usage errors and unsupported platforms", async () => {
    using s = sandbox("linux");
    expect(await s.run()).toBe(2);
    expect(await s.run("restart")).toBe(2);
    expect(s.err).toContain("unknown service command 'restart'");
    expect(await s.run("status", "--config", "x.yaml")).toBe(2);
    expect(await s.run("install", "--bogus")).toBe(2);
    expect(s.err).toContain("memproxy: unknown option '--bogus'\nRun 'memproxy service --help' for usage.\n");
    expect(await serviceCommand(["install"], s.io, { platform: "win32", home: s.home, vars: s.vars, program: PROGRAM })).toBe(1);
    expect(s.err).toContain("supports Linux (systemd) and macOS (launchd), not win32");
  });
});

describe("service through the compiled binary (needs `service` wired in src/cli.ts)", () => {
  test("install writes a unit whose ExecStart is the binary itself; a failed install prints no stack", async () => {
    const binary = await compiledBinary();
    using s = sandbox("linux");
    const run = (args: string[], extra: Record<string, string> = {}) =>
      runToEnd([binary, ...args], { cwd: s.root, env: { PATH: s.vars.PATH, HOME: s.home, MEMPROXY_FIXTURE_CALLS: s.vars.MEMPROXY_FIXTURE_CALLS, ...extra } });
    const f = linuxFiles(s.home);
    const failed = await run(["service", "install"], { MEMPROXY_FIXTURE_FAIL: "daemon-reload" });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("Undid what this install had done");
    expect(failed.stderr).not.toMatch(/\n\s+at |\bError:/);
    expect(existsSync(f.unit)).toBe(false);

    const r = await run(["service", "install"]);
    // Only warnings (the sandbox is under /tmp), no errors.
    expect(r.stderr.trim().split("\n").filter((l) => l && !l.startsWith("memproxy: warning: "))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(f.config);
    expect(r.stdout).not.toContain("from source");
    expect(systemdProgramArgs(readFileSync(f.unit, "utf8"))).toEqual([binary, "--config", f.config]);
    expect(s.calls().slice(-3).map((c) => c[2])).toEqual(["daemon-reload", "enable", "restart"]);
    if (SYSTEMD_ANALYZE) expect(await systemdVerify(f.unit, s.root)).toBe("");
  });
});
