// The command line read with node:util's parseArgs, for the CLI and the service command alike: its errors
// are said in memproxy's words (Node's own suggest quoting options after "--", which memproxy has no use for).
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A command line that cannot be read: the message is the one line to show before the pointer to --help. */
export class ArgsError extends Error {
  override name = "ArgsError";
}

/**
 * parseArgs, strict, with positionals allowed.
 * @throws ArgsError for an unknown option, a missing value, or a value given to a flag.
 */
export function readArgs<O extends NonNullable<ParseArgsConfig["options"]>>(args: string[], options: O) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new ArgsError(argsProblem(err));
  }
}

function argsProblem(err: unknown): string {
  const { code, message } = err as { code?: string; message?: string };
  const text = String(message ?? err);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const name = /^Unknown option '([^']*)'/.exec(text)?.[1];
    if (name !== undefined) return `unknown option '${name}'`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
    const missing = /^Option '([^']*)' argument missing/.exec(text);
    if (missing) return `${missing[1]!.replace(/ <value>$/, "")} needs a value`;
    const flag = /^Option '([^']*)' does not take an argument/.exec(text);
    if (flag) return `${flag[1]} takes no value`;
  }
  return text.charAt(0).toLowerCase() + text.slice(1);
}
