// The programs the benchmark compiles: memproxy itself, and a bare Bun server built with the very same
// flags (scripts/build.ts's), to compare idle memory with.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

async function run(cmd: string[], cwd: string): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} failed (exit ${code}):\n${out}${err}`);
}

/** Compiles memproxy with scripts/build.ts into `outfile`. */
export async function buildMemproxy(outfile: string): Promise<void> {
  await run([process.execPath, "scripts/build.ts", "--outfile", outfile], ROOT);
}

/**
 * Compiles scripts/bench/bare-server.ts into `outfile` with scripts/build.ts itself: build.ts compiles
 * `src/main.ts` under its own parent folder, so a copy of it in a scratch folder, beside the bare
 * server as that folder's src/main.ts, builds the bare server with exactly memproxy's flags.
 */
export async function buildBareServer(outfile: string): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "memproxy-bench-bare-"));
  try {
    mkdirSync(join(scratch, "scripts"));
    mkdirSync(join(scratch, "src"));
    copyFileSync(join(ROOT, "scripts", "build.ts"), join(scratch, "scripts", "build.ts"));
    copyFileSync(join(import.meta.dir, "bare-server.ts"), join(scratch, "src", "main.ts"));
    await run([process.execPath, join(scratch, "scripts", "build.ts"), "--outfile", outfile], scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
