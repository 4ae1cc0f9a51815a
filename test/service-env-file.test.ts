// The service's environment file: what memproxy accepts is read to the same values by /bin/sh (the launchd
// wrapper, run here for real: dash, and bash in POSIX mode as macOS's /bin/sh) and by memproxy's parser.
// systemd's own reading of the same lines is checked by test/e2e/service.e2e.test.ts under a real systemd.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatEnvLine, parseEnvFile, setEnvVar } from "../src/service-env-file.ts";
import { renderLaunchdPlist } from "../src/service-launchd.ts";
import { runToEnd } from "./support/process.ts";

const PRINTER = join(import.meta.dir, "support", "service-env-fixture.ts");
const dir = mkdtempSync(join(tmpdir(), "memproxy-envfile-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The shells that read the file on macOS (bash as /bin/sh) and here (/bin/sh: dash on Debian). */
const SHELLS: [string, string[]][] = [["/bin/sh", ["/bin/sh"]], ...(Bun.which("bash") ? [["bash --posix", [Bun.which("bash")!, "--posix"]] as [string, string[]]] : [])];

/** The /bin/sh script of the launchd agent, exactly as install writes it. */
const WRAPPER = /<string>-c<\/string>\s*<string>([^<]*)<\/string>/.exec(renderLaunchdPlist({ argv: ["x"], path: "/bin", envFile: "/e", userNamespaces: false }, "/l"))![1]!;

/** Runs the launchd wrapper on `file` with `shell`, and returns the values it gave memproxy (here: a printer). */
async function shellRead(shell: string[], file: string, names: string[]): Promise<Record<string, string | null>> {
  const { stdout, stderr, code } = await runToEnd([...shell, "-c", WRAPPER, file, process.execPath, PRINTER], { env: { PATH: "/usr/bin:/bin", MEMPROXY_FIXTURE_PRINT: names.join(",") } });
  if (code !== 0) throw new Error(`${shell.join(" ")} exited ${code}: ${stderr}`);
  return JSON.parse(stdout).env;
}

/** Values that need each of the three forms, with $, quotes, spaces, backslashes and backticks. */
const TRICKY: Record<string, string> = {
  PLAIN: "sk-ant-api03_Ab9.x/y:z,w+v=u@t%s",
  SPACES: "a b  c",
  DOLLAR: "pa$$word $HOME ${HOME} $(id)",
  QUOTES: `say "hi" and it's`,
  BACKSLASH: "C:\\dir\\n \\\\ end\\",
  BACKTICK: "`id` and $`x`",
  TILDE: "~/file:~/other",
  HASH: "#not-a-comment #x",
  SHELL_CHARS: "a;b&c|d<e>f(g)h",
  UNICODE: "clé ünïcødé ✓",
  TAB: "a\tb",
  EMPTY: "",
};

describe("values written by formatEnvLine", () => {
  const file = join(dir, "tricky.env");
  writeFileSync(file, Object.entries(TRICKY).map(([k, v]) => formatEnvLine(k, v)).join("\n") + "\n");

  test("memproxy's parser reads every value back", () => {
    const parsed = parseEnvFile(readFileSync(file, "utf8"));
    expect(parsed.problems).toEqual([]);
    expect(parsed.vars).toEqual(TRICKY);
  });

  for (const [name, shell] of SHELLS) {
    test(`${name} reads every value back through the launchd wrapper`, async () => {
      expect(await shellRead(shell, file, Object.keys(TRICKY))).toEqual(TRICKY);
    });
  }

  test("each form is the simplest that works", () => {
    expect(formatEnvLine("A", "sk-123")).toBe("A=sk-123");
    expect(formatEnvLine("A", "")).toBe("A=");
    expect(formatEnvLine("A", "a $b")).toBe("A='a $b'");
    expect(formatEnvLine("A", `it's "$x"`)).toBe(`A="it's \\"\\$x\\""`);
    expect(() => formatEnvLine("A", "two\nlines")).toThrow("line break");
    expect(() => formatEnvLine("1A", "x")).toThrow("not a variable name");
  });
});

describe("lines systemd and sh read differently are refused, with the line and what to write", () => {
  // What each reader makes of them: systemd.exec(5) EnvironmentFile= and systemd's env-file.c; POSIX sh.
  const cases: [string, string][] = [
    ["A=a b", "needs quoting"], // systemd: "a b"; sh: A=a, then runs `b`
    ["A= b", "a space after '='"], // systemd: "b"; sh: A="", then runs `b`
    ["A =b", "remove the space before '='"], // systemd: A="b"; sh: runs `A`
    ["export A=b", "remove 'export'"], // systemd: a variable named "export A"; sh: A=b
    ['A="$HOME"', "unescaped $"], // systemd: "$HOME"; sh: the home folder
    ["A=`id`", "needs quoting"], // systemd: "`id`"; sh: id's output
    ["A='x'y", "text after the closing quote"], // both: "xy"; but A='x' y splits in sh only: refused as a class
    ['A="x" y', "text after the closing quote"], // systemd: "xy"; sh: A=x, then runs `y`
    ["A=~/x", "needs quoting"], // systemd: "~/x"; sh: the home folder + /x
    ["; comment", "not a NAME=value line"], // systemd: a comment; sh: a syntax error
    ["just words", "not a NAME=value line"], // systemd: ignored; sh: runs `just`
    ["A=b\r", "carriage return"], // systemd: "b" (CR ends the line); sh: "b\r"
    ["# comment \\", "comment ending in \\"], // systemd < 254: the next line is comment too; sh: not
    ["A='unterminated", "not closed on this line"], // both: a value over several lines, which memproxy does not read
    ['A="x\\', "at the end of the line"],
    ["1A=b", "not a variable name"],
  ];
  for (const [line, message] of cases) {
    test(JSON.stringify(line), () => {
      const parsed = parseEnvFile(`OK=1\n${line}\n`);
      expect(parsed.problems).toHaveLength(1);
      expect(parsed.problems[0]!.line).toBe(2);
      expect(parsed.problems[0]!.message).toContain(message);
      expect(parsed.vars.OK).toBe("1");
    });
  }

  test("sh really reads an unquoted space and an unescaped $ otherwise than as written", async () => {
    const file = join(dir, "differ.env");
    writeFileSync(file, 'A=a b\nB="$HOME/x"\n');
    const { stdout } = await runToEnd(["/bin/sh", "-c", `set -a; . "$0"; printf '%s|%s' "$A" "$B"`, file], { env: { PATH: "/usr/bin:/bin", HOME: "/h" } });
    // systemd reads A as "a b" and B as "$HOME/x" (no expansion in environment files).
    expect(stdout).toBe("|/h/x");
  });

  test("blank lines, comments, indentation and trailing spaces are read alike and accepted", () => {
    const parsed = parseEnvFile("# a comment\n\n  A=1  \n\tB='x y'\t\nC=\"q\\\"q\"\n# A=2\nA=3\n");
    expect(parsed.problems).toEqual([]);
    expect(parsed.vars).toEqual({ A: "3", B: "x y", C: 'q"q' });
  });
});

describe("setEnvVar", () => {
  test("replaces the first assignment, drops later ones, keeps everything else", () => {
    expect(setEnvVar("# keys\nK=\nX=1\nK=old\n", "K", "new value")).toBe("# keys\nK='new value'\nX=1\n");
  });
  test("appends when the variable is not there, with a line end before it when missing", () => {
    expect(setEnvVar("X=1", "K", "v")).toBe("X=1\nK=v\n");
    expect(setEnvVar("", "K", "v")).toBe("K=v\n");
  });
});
