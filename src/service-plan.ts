// The steps `memproxy service install|uninstall` takes: printed in full by --dry-run, carried out
// otherwise, and undone in reverse order when one fails, so that a failed install leaves nothing behind.
import { chmod, mkdir, rm, rmdir, stat } from "node:fs/promises";
import { dirname } from "node:path";

/** One thing install/uninstall does. */
export type Step =
  /** Writes a file; `shown` replaces `text` in the dry-run listing (secrets as <generated>). */
  | { kind: "write"; path: string; text: string; mode: number; what: string; shown?: string }
  | { kind: "mkdir"; path: string; what: string }
  | { kind: "remove"; path: string; what: string }
  /**
   * Runs a command. When a later step fails, `undo` runs in the rollback (in reverse order), `undoLast`
   * after all of it (e.g. a reload once the files are back). `mayFail` steps only warn; `hint` says
   * what to do when the step fails.
   */
  | { kind: "run"; argv: string[]; mayFail?: boolean; undo?: string[]; undoLast?: string[]; hint?: string };

/** The result of running a command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A failure the user can act on; the CLI prints its message, without a stack. */
export class ServiceError extends Error {}

/** Where the command writes; the CLI passes stdout/stderr, tests their own. */
export interface ServiceIO {
  out(text: string): void;
  err(text: string): void;
}

/** Prints what `steps` would do, every file in full. */
export function printSteps(steps: Step[], io: ServiceIO): void {
  for (const s of steps) {
    if (s.kind === "write") {
      io.out(`would write ${s.what}: ${s.path} (mode ${s.mode.toString(8)})\n`);
      io.out((s.shown ?? s.text).replace(/^/gm, "    ").trimEnd() + "\n");
    } else if (s.kind === "mkdir") io.out(`would create ${s.what}: ${s.path}\n`);
    else if (s.kind === "remove") io.out(`would remove ${s.what}: ${s.path}\n`);
    else io.out(`would run: ${s.argv.map(shellQuote).join(" ")}\n`);
  }
}

/**
 * Carries out `steps` in order. When a step fails (a command not marked mayFail, or a file that cannot
 * be written), undoes what the earlier ones did, in reverse: written files get their old content back or
 * are removed, created folders are removed, `undo` commands run. Then throws a ServiceError that says
 * what failed, what was undone, and what could not be (with the command to finish it by hand).
 */
export async function carryOut(steps: Step[], run: (argv: string[]) => Promise<RunResult>, io: ServiceIO): Promise<void> {
  const undo: Undo[] = [];
  const last: Undo[] = [];
  for (const s of steps) {
    try {
      if (s.kind === "write") {
        const before = await readText(s.path);
        const created = await makeDirs(dirname(s.path));
        await Bun.write(s.path, s.text);
        await chmod(s.path, s.mode);
        undo.push(
          ...dirUndos(created),
          before === undefined
            ? { describe: `removed ${s.path}`, manual: `rm ${shellQuote(s.path)}`, action: () => rm(s.path, { force: true }) }
            : { describe: `restored ${s.path}`, manual: `(restore ${s.path} by hand)`, action: async () => void (await Bun.write(s.path, before)) },
        );
      } else if (s.kind === "mkdir") {
        undo.push(...dirUndos(await makeDirs(s.path)));
      } else if (s.kind === "remove") {
        await rm(s.path, { force: true });
      } else {
        const r = await run(s.argv);
        if (r.code !== 0) {
          const detail = `'${s.argv.join(" ")}' failed (exit ${r.code})${r.stderr.trim() ? `: ${r.stderr.trim()}` : ""}`;
          if (!s.mayFail) throw new ServiceError(s.hint ? `${detail}\n${s.hint}` : detail);
          io.err(`memproxy: note: ${detail}\n`);
          continue;
        }
        if (s.undo) undo.push(command(s.undo, run));
        if (s.undoLast) last.unshift(command(s.undoLast, run));
      }
    } catch (err) {
      const why = err instanceof ServiceError ? err.message : `${stepName(s)}: ${(err as Error).message}`;
      throw new ServiceError(`${why}\n${await rollBack([...last, ...undo])}`);
    }
  }
}

interface Undo {
  describe: string;
  /** The command that finishes it by hand, when the undo itself fails. */
  manual: string;
  action: () => Promise<void>;
}

async function rollBack(undo: Undo[]): Promise<string> {
  if (!undo.length) return "Nothing had been changed yet.";
  const done: string[] = [];
  const left: string[] = [];
  for (const u of undo.reverse()) {
    try {
      await u.action();
      done.push(u.describe);
    } catch (err) {
      left.push(`${u.manual}    # failed: ${(err as Error).message}`);
    }
  }
  let text = `Undid what this install had done: ${done.join("; ") || "nothing"}.`;
  if (left.length) text += `\nCould not undo everything; left behind, to remove by hand:\n  ${left.join("\n  ")}`;
  return text;
}

function command(argv: string[], run: (argv: string[]) => Promise<RunResult>): Undo {
  const manual = argv.map(shellQuote).join(" ");
  return {
    describe: `ran ${manual}`,
    manual,
    action: async () => {
      const r = await run(argv);
      if (r.code !== 0) throw new Error(r.stderr.trim() || `exit ${r.code}`);
    },
  };
}

/** Undo entries for folders made deepest first, ordered so that the rollback (in reverse) removes the deepest first. */
function dirUndos(created: string[]): Undo[] {
  return [...created].reverse().map((dir) => ({ describe: `removed ${dir}/`, manual: `rmdir ${shellQuote(dir)}`, action: () => rmdir(dir) }));
}

function stepName(s: Step): string {
  return s.kind === "run" ? `'${s.argv.join(" ")}'` : `${s.kind} ${s.path}`;
}

/** Creates `dir` and its missing parents; returns the ones it created, deepest first. */
async function makeDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !(await exists(d)); d = dirname(d)) missing.push(d);
  await mkdir(dir, { recursive: true });
  return missing;
}

/** The text of the file at `path`; undefined when there is none. */
export async function readText(path: string): Promise<string | undefined> {
  const f = Bun.file(path);
  return (await f.exists()) ? f.text() : undefined;
}

/** Whether a file or folder exists at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** `s` quoted for a POSIX shell (unchanged when it needs no quotes). */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
