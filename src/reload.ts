// Watching the config file for changes, as editors and config managers write it.
import { watch, type FSWatcher } from "node:fs";
import { dirname, resolve } from "node:path";

/**
 * Calls `onChange` after something changed in the folder of the file at `path`. The folder is
 * watched, not the file: editors write a new file and rename it over the old one, and Kubernetes
 * swaps a ConfigMap's files through a `..data` symlink, so the event may name another entry. The
 * caller compares the file's content to skip changes that are not its own. Bursts of events are
 * coalesced into one call.
 * @returns a function that stops watching (idempotent).
 */
export function watchFile(path: string, onChange: () => void, settleMs = 100): () => void {
  const full = resolve(path);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let watcher: FSWatcher | undefined = watch(dirname(full), { persistent: false }, () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, settleMs);
  });
  return () => {
    clearTimeout(timer);
    watcher?.close();
    watcher = undefined;
  };
}
