// What `memproxy service` needs from a service manager (systemd, launchd), and the machine it runs on.
import { ServiceError, type RunResult, type Step } from "./service-plan.ts";

/** The machine the service is installed on. Defaults to this process's; tests pass another home, platform and PATH. */
export interface ServiceEnv {
  /** "linux" (systemd) or "darwin" (launchd). */
  platform: string;
  home: string;
  /** Environment: PATH finds systemctl/launchctl and litellm; XDG_CONFIG_HOME places files on Linux. */
  vars: Record<string, string | undefined>;
  /** The user id, for launchd's gui/<uid> domain. */
  uid: number;
  /** The command that runs memproxy: the compiled binary, or bun and src/main.ts. */
  program: string[];
  /** True when `program` is bun running the source (the service then depends on this checkout). */
  fromSource: boolean;
  /** Relative --config paths are resolved against it. */
  cwd: string;
}

/** Where a platform keeps the service's files. */
export interface Layout {
  /** The systemd unit or launchd property list. */
  unitFile: string;
  configDir: string;
  envFile: string;
}

/** What the unit runs. */
export interface UnitSpec {
  /** memproxy's command line, --config included. */
  argv: string[];
  /** The PATH the service gets: only the folders of memproxy and LiteLLM, and the system's. */
  path: string;
  envFile: string;
  /** Whether the user's processes can create user namespaces (systemd's file-system sandbox needs them). */
  userNamespaces: boolean;
}

/** What the machine allows of the sandbox, checked before the unit is written. */
export interface SandboxCheck {
  userNamespaces: boolean;
  /** The command that checked it, for --dry-run; none when there is nothing to check. */
  command?: string[];
  /** For the user, when the sandbox is weaker than the unit's full one. */
  note?: string;
}

/** The service manager's view of the service. */
export interface ManagerState {
  /** One line for the user, e.g. "active (running), main PID 1234". */
  summary: string;
  /** The service's main process; null when it is not running (or the manager cannot be asked). */
  pid: number | null;
  /** More detail when something is wrong (recent log lines), if the manager has it. */
  details?: string;
}

/** One service manager: its files, the unit it writes, the steps that install it, and its view of the service. */
export interface Platform {
  /** "systemd" or "launchd". */
  readonly manager: string;
  /** The command that controls it (systemctl, launchctl); install refuses to start without it. */
  readonly tool: string;
  readonly layout: Layout;
  /** Names the unit in messages: "the systemd user unit", "the launchd agent". */
  readonly unitWhat: string;
  /** Its short name, as a label: "unit", "agent". */
  readonly unitLabel: string;
  /** A command that follows the logs. */
  readonly logsHint: string;
  /** The command that restarts the service after its config or env file changed. */
  readonly restartCommand: string;
  /** Checks what the sandbox can use on this machine. */
  checkSandbox(run: (argv: string[]) => Promise<RunResult>): Promise<SandboxCheck>;
  /** The unit file's text. */
  render(spec: UnitSpec): string;
  /** The memproxy command line in a unit this platform rendered. */
  programArgs(unitText: string): string[];
  /** Writes and commands that install and start the unit (`fresh`: none was installed before). */
  installSteps(spec: UnitSpec, fresh: boolean): Step[];
  uninstallSteps(): Step[];
  /** Asks the manager whether the service runs, and as which process. */
  query(run: (argv: string[]) => Promise<RunResult>): Promise<ManagerState>;
  /** Warnings about paths the service cannot use as given (e.g. under a private /tmp). */
  pathWarnings(paths: string[]): string[];
  /** Lines for the user after an install. */
  afterInstall(): string[];
}

/**
 * Runs a command found on the machine's PATH (so tests can stand in for systemctl and launchctl).
 * @returns exit code 127 with a message when it is not on PATH.
 */
export async function runTool(argv: string[], env: ServiceEnv): Promise<RunResult> {
  const exe = Bun.which(argv[0]!, { PATH: env.vars.PATH ?? "" });
  if (!exe) return { code: 127, stdout: "", stderr: `${argv[0]} not found on PATH` };
  const proc = Bun.spawn([exe, ...argv.slice(1)], { env: env.vars, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `s`, refused when it has a line break (no unit or property list line can carry one). */
export function oneLine(s: string, where: string): string {
  if (/[\n\r]/.test(s)) throw new ServiceError(`a value with a line break cannot go into ${where}: ${JSON.stringify(s)}`);
  return s;
}
