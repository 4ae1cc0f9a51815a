// Reloading the config file: on SIGHUP and when it changes on disk, as editors, config managers and
// Kubernetes write it. A reload either applies a whole valid file or changes nothing.
import { realpathSync, statSync, watch, type FSWatcher } from "node:fs";
import { dirname, resolve } from "node:path";
import { shownUrls } from "./address.ts";
import { ConfigError, readConfigText, type Config } from "./config.ts";
import type { Logger } from "./log.ts";

/** What a reloader works with. */
export interface ReloaderOptions {
  /** The config file, as given. */
  path: string;
  /** Parses a file's text (with the environment and the command line's overrides). */
  parse(text: string): Config;
  /** The configuration running now. */
  running(): Config;
  /** Applies a parsed configuration; returns notes on what could not change while running. */
  apply(next: Config): string[];
  /** Records a reload that changed nothing, with why (shown by /health). */
  failed(problems: string[]): void;
  logger: Logger;
  /** Watch the file (memproxy.reload.watch); SIGHUP reloads either way. */
  watch: boolean;
  /** How long the file must stay the same before it is read as final (ms). */
  settleMs?: number;
  /** How often the file is checked besides the folder watch, for changes a watch cannot see (ms). */
  pollMs?: number;
  /** Reads the file's text (default: readConfigText, bounded). */
  read?: (path: string) => Promise<string>;
}

/**
 * Reloads the config file when asked (SIGHUP) and when it changes. The folder is watched, not the file
 * (editors write a new file and rename it over the old one; Kubernetes swaps a ConfigMap's files through a
 * `..data` symlink), and the file is also checked every few seconds by its identity, which catches a
 * symlink into another folder and a replaced folder. A file is applied only once it has stopped changing;
 * an empty file never replaces the running config (an editor truncates before it writes).
 */
export class ConfigReloader {
  /**
   * The text of the last reload, whatever came of it (at first, the running config's). A change is a text
   * other than this one: a file left broken or empty is not tried again at every event in its folder (a
   * log written beside it), and a file put back as it was after a failed edit is reloaded, which clears
   * the failure.
   */
  private lastText: string | undefined;
  /** Why the file could not be read at the last reload, if it could not: the same failure is reported once. */
  private lastReadError: string | undefined;
  private queue: Promise<void> = Promise.resolve();
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: ReturnType<typeof setInterval> | undefined;
  private debounce: ReturnType<typeof setTimeout> | undefined;
  private identity: string;
  private stopped = false;

  constructor(
    private readonly options: ReloaderOptions,
    /** The text the running config was parsed from. */
    startText: string | undefined,
  ) {
    this.lastText = startText;
    this.identity = fileIdentity(options.path);
    if (options.watch) this.startWatching();
  }

  /**
   * Re-reads the file and applies it if it is valid and changed (SIGHUP applies it even unchanged).
   * Reloads run one after another; whatever goes wrong, the running config stays.
   */
  reload(why: "SIGHUP" | "file changed"): Promise<void> {
    this.queue = this.queue.then(() => this.reloadNow(why));
    return this.queue;
  }

  private async reloadNow(why: "SIGHUP" | "file changed"): Promise<void> {
    const { logger, path } = this.options;
    let text: string;
    try {
      text = await this.read(path);
    } catch (err) {
      const problems = failureOf(err, path);
      if (why === "file changed" && problems.join("\n") === this.lastReadError) return;
      // Whatever the file holds when it can be read again is a change (also the text that runs now).
      this.lastReadError = problems.join("\n");
      this.lastText = undefined;
      this.options.failed(problems);
      logger.error("config reload failed; still serving with the previous config", { reason: why, problems });
      return;
    }
    this.lastReadError = undefined;
    try {
      if (why === "file changed" && text === this.lastText) return;
      text = await this.settled(text);
      if (why === "file changed" && text === this.lastText) return;
      this.lastText = text;
      if (text.trim() === "") {
        this.options.failed([`${path}: the file is empty; the running config stays until it has content`]);
        logger.warn("config file is empty; keeping the running config", { reason: why, config: path });
        return;
      }
      const next = this.options.parse(text);
      const running = this.options.running();
      if (running.access.keys.length && !next.access.keys.length) {
        logger.warn("the reloaded config has no access keys: memproxy now serves requests without one", { config: path });
      }
      if (running.backends.join(" ") !== next.backends.join(" ")) {
        logger.warn("the reloaded config changes the backend", { config: path, backend: shownUrls(next.backends) });
      }
      const notes = this.options.apply(next);
      logger.info("config reloaded", { reason: why, config: path });
      for (const warning of next.warnings) logger.warn(warning);
      for (const note of notes) logger.warn(note);
    } catch (err) {
      const problems = failureOf(err, path);
      this.options.failed(problems);
      logger.error("config reload failed; still serving with the previous config", { reason: why, problems });
    }
  }

  /** The file's text once it reads the same twice, settleMs apart (a writer may still be at work). */
  private async settled(text: string): Promise<string> {
    const settleMs = this.options.settleMs ?? 100;
    for (let i = 0; i < 50; i++) {
      await Bun.sleep(settleMs);
      const again = await this.read(this.options.path);
      if (again === text) return text;
      text = again;
    }
    return text;
  }

  private read(path: string): Promise<string> {
    return (this.options.read ?? readConfigText)(path);
  }

  private startWatching(): void {
    const full = resolve(this.options.path);
    const folders = new Set([dirname(full)]);
    try {
      folders.add(dirname(realpathSync(full)));
    } catch {
      // not there (yet): the poll sees it appear
    }
    const changed = () => {
      clearTimeout(this.debounce);
      this.debounce = setTimeout(() => void this.reload("file changed"), this.options.settleMs ?? 100);
    };
    for (const folder of folders) {
      try {
        const w = watch(folder, { persistent: false }, changed);
        w.on("error", () => {}); // a folder that disappears: the poll carries on
        this.watchers.push(w);
      } catch {
        // cannot watch it: the poll carries on
      }
    }
    this.pollTimer = setInterval(() => {
      const now = fileIdentity(this.options.path);
      if (now !== this.identity) {
        this.identity = now;
        changed();
      }
    }, this.options.pollMs ?? 2000);
    this.pollTimer.unref();
  }

  /** Stops watching (idempotent). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.debounce);
    clearInterval(this.pollTimer);
    for (const w of this.watchers) w.close();
  }
}

/** What identifies the file's current version, through symlinks: device, inode, size, modification time. */
function fileIdentity(path: string): string {
  try {
    const s = statSync(path);
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return "missing";
  }
}

/** What a failed reload reports: a config error's own problems, else the error's message under the file's name. */
function failureOf(err: unknown, path: string): string[] {
  return err instanceof ConfigError ? err.problems : [`${path}: ${(err as Error).message ?? String(err)}`];
}
