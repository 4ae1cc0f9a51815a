// The service's environment file (memproxy.env): the one format that systemd's EnvironmentFile= and
// /bin/sh (the launchd wrapper: `set -a; . FILE`) both read to the same values, read and written here.
//
// The two readers differ (systemd.exec(5), "EnvironmentFile="; systemd's src/basic/env-file.c; POSIX sh):
// systemd keeps spaces inside an unquoted value where sh ends the word, sh expands $ and ` where systemd
// never does, systemd reads "KEY = v", "export K=v", ";" comments, CR as a line end and a comment line
// ending in "\" differently from sh. What both read alike, and all this module accepts:
// - blank lines, and comment lines starting with "#" (not ending with "\");
// - NAME=VALUE, NAME a shell name ([A-Za-z_][A-Za-z0-9_]*), nothing around "=", one line each;
// - VALUE empty; or unquoted, without spaces, tabs, quotes, \ $ ` ; & | < > ( ) ~;
//   or in single quotes: anything but ' (taken literally);
//   or in double quotes, with \ before each " \ $ ` (and no other $ or `);
//   nothing after the closing quote but spaces.

/** One line the readers would not read alike, with what to write instead. */
export interface EnvFileProblem {
  line: number;
  message: string;
}

/** The variables of an environment file, and the lines systemd and sh would read differently. */
export interface EnvFile {
  vars: Record<string, string>;
  problems: EnvFileProblem[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const UNQUOTED = /^[^\s'"\\$`;&|<>()~]*$/;
const QUOTING_HELP = "put the value in single quotes (NAME='value'), or, if it contains ', in double quotes with \\ before each \" \\ $ `";

/**
 * Reads an environment file in the common format.
 * @param text the file's content.
 * @returns its variables (the last assignment of a name wins, as in both readers) and its problems.
 */
export function parseEnvFile(text: string): EnvFile {
  const vars: Record<string, string> = {};
  const problems: EnvFileProblem[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = i + 1;
    const problem = (message: string) => void problems.push({ line, message });
    if (raw.includes("\r")) return problem("has a carriage return (a Windows line end): systemd ends the line there, sh keeps it in the value; save the file with Unix line ends");
    if (raw.includes("\0")) return problem("has a NUL character");
    const trimmed = raw.replace(/^[ \t]+/, "");
    if (trimmed === "") return;
    if (trimmed.startsWith("#")) {
      if (trimmed.endsWith("\\")) problem("a comment ending in \\: older systemd continues it onto the next line, sh does not; remove the \\");
      return;
    }
    const eq = trimmed.indexOf("=");
    const name = eq < 0 ? trimmed : trimmed.slice(0, eq);
    if (eq < 0) return problem(`'${clip(trimmed)}' is not a NAME=value line (sh would run it as a command); make it a comment with #`);
    if (!NAME.test(name)) {
      const why = /^export\s/.test(name) ? "remove 'export' (the service exports every variable)" : /\s$/.test(name) ? "remove the space before '='" : "a name has only letters, digits and _, and does not start with a digit";
      return problem(`'${clip(name)}' is not a variable name: ${why}`);
    }
    const value = readValue(trimmed.slice(eq + 1));
    if (typeof value === "string") vars[name] = value;
    else problem(`${name}: ${value.problem}`);
  });
  return { vars, problems };
}

function readValue(v: string): string | { problem: string } {
  const rest = (end: number) => v.slice(end).replace(/[ \t]+$/, "");
  if (v.startsWith("'")) {
    const end = v.indexOf("'", 1);
    if (end < 0) return { problem: "the single quote is not closed on this line (a value is one line)" };
    if (rest(end + 1)) return { problem: `text after the closing quote: ${QUOTING_HELP}` };
    return v.slice(1, end);
  }
  if (v.startsWith('"')) {
    let out = "";
    for (let i = 1; i < v.length; i++) {
      const c = v[i]!;
      if (c === '"') {
        if (rest(i + 1)) return { problem: `text after the closing quote: ${QUOTING_HELP}` };
        return out;
      }
      if (c === "$" || c === "`") return { problem: `an unescaped ${c} inside double quotes: sh would expand it, systemd would not; write \\${c}, or use single quotes` };
      if (c === "\\") {
        const next = v[i + 1];
        if (next === undefined) return { problem: "a \\ at the end of the line: a value is one line" };
        // Both readers drop the \ before " \ $ ` and keep it before anything else.
        out += '"\\$`'.includes(next) ? next : c + next;
        i++;
        continue;
      }
      out += c;
    }
    return { problem: "the double quote is not closed on this line (a value is one line)" };
  }
  if (v.startsWith(" ") || v.startsWith("\t")) return { problem: `a space after '=': sh would take the value as empty and run the rest as a command; remove it, or ${QUOTING_HELP}` };
  const value = v.replace(/[ \t]+$/, "");
  if (!UNQUOTED.test(value)) return { problem: `this value needs quoting (it has a space or one of ' " \\ $ \` ; & | < > ( ) ~): ${QUOTING_HELP}` };
  return value;
}

/**
 * One NAME=value line that systemd, sh and parseEnvFile all read back as `value`.
 * @throws Error when the value has a line break or NUL (no format carries those on one line).
 */
export function formatEnvLine(name: string, value: string): string {
  if (!NAME.test(name)) throw new Error(`not a variable name: ${JSON.stringify(name)}`);
  if (/[\n\r\0]/.test(value)) throw new Error(`${name}: a value with a line break or NUL cannot be written to an environment file`);
  if (value === "" || (UNQUOTED.test(value) && !value.includes("#"))) return `${name}=${value}`;
  if (!value.includes("'")) return `${name}='${value}'`;
  return `${name}="${value.replace(/["\\$`]/g, (c) => `\\${c}`)}"`;
}

/**
 * `text` with `name` set to `value`: its first assignment replaced (the others removed), or a line
 * appended. Comments and other lines are kept as they are.
 */
export function setEnvVar(text: string, name: string, value: string): string {
  const line = formatEnvLine(name, value);
  const assigns = new RegExp(`^[ \\t]*${name}=`);
  let done = false;
  const lines = text.split("\n").flatMap((l) => {
    if (!assigns.test(l)) return [l];
    if (done) return [];
    done = true;
    return [line];
  });
  if (done) return lines.join("\n");
  return `${text}${text === "" || text.endsWith("\n") ? "" : "\n"}${line}\n`;
}

/** The problems as lines for a user: path:line: message. */
export function describeEnvProblems(path: string, problems: EnvFileProblem[]): string {
  return problems.map((p) => `${path}:${p.line}: ${p.message}`).join("\n");
}

function clip(s: string): string {
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}
