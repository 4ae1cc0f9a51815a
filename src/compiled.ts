// Whether this memproxy runs as the compiled executable (its modules live in Bun's embedded file system).

/** True in the executable built by scripts/build.ts; false when run from source (`bun src/main.ts`). */
export const COMPILED: boolean = import.meta.path.startsWith("/$bunfs/") || import.meta.path.startsWith("B:/~BUN/");
