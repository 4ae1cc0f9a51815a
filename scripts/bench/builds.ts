// The programs the benchmark compiles: memproxy itself, and the bare Bun server and the bun floor built
// with the very same flags (scripts/build.ts's), to compare idle memory with.
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
 * Compiles a program of the bench (`entry`, e.g. bare-server.ts or floor.ts) into `outfile` with
 * scripts/build.ts itself, so with exactly memproxy's flags: build.ts compiles `src/main.ts` under its own
 * parent folder, so the entry is bundled into one file as a scratch folder's src/main.ts, beside a copy
 * of build.ts, which then compiles it.
 */
export async function buildLikeMemproxy(entry: string, outfile: string): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), "memproxy-bench-build-"));
  try {
    mkdirSync(join(scratch, "scripts"));
    copyFileSync(join(ROOT, "scripts", "build.ts"), join(scratch, "scripts", "build.ts"));
    await run([process.execPath, "build", entry, "--target", "bun", "--outfile", join(scratch, "src", "main.ts")], ROOT);
    await run([process.execPath, join(scratch, "scripts", "build.ts"), "--outfile", outfile], scratch);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
