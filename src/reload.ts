// Watching the config file for changes, as editors and config managers write it.
import { watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";

/**
 * Calls `onChange` after the file at `path` changed on disk. The folder is watched, not the file:
 * editors and config managers often write a new file and rename it over the old one. Bursts of
 * events are coalesced into one call.
 * @returns a function that stops watching (idempotent).
 */
export function watchFile(path: string, onChange: () => void, settleMs = 100): () => void {
  const full = resolve(path);
  const name = basename(full);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined = watch(dirname(full), { persistent: false }, (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, settleMs);
  });
  return () => {
    clearTimeout(timer);
    watcher?.close();
    watcher = undefined;
  };
}
