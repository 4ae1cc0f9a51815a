// Builds release archives: `bun scripts/release.ts [--targets all|host|linux-x64,...] [--out dist/release] [--strict]`.
// Each target gets dist/release/memproxy-<version>-<os>-<arch>.tar.gz (the binary and its checksum, README.md,
// config.example.yaml, install.sh) and a .sha256 beside it. Bun fetches a cross target's runtime at build time;
// where it cannot, that target is skipped with the reason (--strict makes that an error).
// darwin binaries are signed with rcodesign (scripts/codesign.ts: ad hoc, or a Developer ID and notarisation
// through MEMPROXY_SIGN_* / MEMPROXY_NOTARY_*) and their signature verified; without rcodesign they are skipped.
// Binaries this machine can start (its own, and linux-arm64 under QEMU user emulation) must report their version.
import { chmod, cp, mkdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { VERSION } from "../src/version.ts";
import { buildInfo } from "./build.ts";
import { findRcodesign, notarizeDarwin, signDarwin, signingSettings, verifyDarwin, type SigningSettings } from "./codesign.ts";

/** Release targets: our name (os-arch, as in the archive name) to Bun's --target. */
const TARGETS: Record<string, string> = {
  "linux-x64": "bun-linux-x64",
  "linux-arm64": "bun-linux-arm64",
  "darwin-x64": "bun-darwin-x64",
  "darwin-arm64": "bun-darwin-arm64",
};
const HOST = `${process.platform}-${process.arch}`;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    targets: { type: "string", default: "all" },
    out: { type: "string", default: "dist/release" },
    strict: { type: "boolean", default: false },
  },
});

const root = resolve(import.meta.dir, "..");
const out = resolve(values.out!);
const wanted = values.targets === "all" ? Object.keys(TARGETS) : values.targets!.split(",").map((t) => (t.trim() === "host" ? HOST : t.trim()));
for (const t of wanted) {
  if (!TARGETS[t]) {
    console.error(`release: unknown target '${t}' (${t === HOST ? "this machine is not a release platform; " : ""}choose from ${Object.keys(TARGETS).join(", ")}, host or all)`);
    process.exit(2);
  }
}
let signing: SigningSettings = {};
try {
  signing = signingSettings();
} catch (err) {
  console.error(`release: ${(err as Error).message}`);
  process.exit(2);
}

// One commit and date for every target, so that all four report the same version line.
const info = buildInfo(root);
const versionLine = `memproxy ${VERSION} (commit ${info.commit}, built ${info.date}, bun ${Bun.version})`;

await mkdir(out, { recursive: true });
const built: string[] = [];
const skipped: string[] = [];
for (const target of wanted) {
  const name = `memproxy-${VERSION}-${target}`;
  const staging = join(out, ".staging", name);
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const binary = join(staging, "memproxy");
  const skip = async (why: string) => {
    console.log(`skipped ${target}: ${why}`);
    skipped.push(target);
    await rm(staging, { recursive: true, force: true });
  };

  const proc = Bun.spawn(
    [process.execPath, join(root, "scripts", "build.ts"), "--target", TARGETS[target]!, "--outfile", binary, "--commit", info.commit, "--date", info.date],
    { cwd: root, stdout: "pipe", stderr: "pipe" },
  );
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0) {
    const download = /Failed to download[^\n]*/.exec(stderr + stdout)?.[0];
    if (download && target !== HOST) {
      await skip(
        `bun could not fetch its runtime for this target (${download.trim()}). ` +
          `Bun downloads it from the npm registry (@oven/bun-${TARGETS[target]!.slice(4).replace("arm64", "aarch64")}); build this target where that is reachable.`,
      );
      continue;
    }
    console.error(`release: building ${target} failed (exit ${code}):\n${stdout}${stderr}`);
    process.exit(1);
  }

  if (target.startsWith("darwin-")) {
    const rcodesign = findRcodesign();
    if (!rcodesign) {
      await skip("its binary must be signed (macOS kills it otherwise), and rcodesign is not installed: bash scripts/setup-release-tools.sh installs it (or set MEMPROXY_RCODESIGN_BIN).");
      continue;
    }
    let how: string;
    try {
      how = await signDarwin(binary, rcodesign, signing);
    } catch (err) {
      console.error(`release: signing ${target} failed: ${(err as Error).message}`);
      process.exit(1);
    }
    const verified = await verifyDarwin(binary, rcodesign);
    if (!verified.ok) {
      console.error(`release: the ${target} binary's signature does not verify after signing; macOS would kill it:\n${verified.problems.slice(0, 20).join("\n")}${verified.problems.length > 20 ? `\n… and ${verified.problems.length - 20} more` : ""}`);
      process.exit(1);
    }
    console.log(`signed ${target} (${how}); rcodesign verify: OK`);
    if (signing.notaryApiKeyFile) {
      try {
        await notarizeDarwin(binary, rcodesign, signing.notaryApiKeyFile);
      } catch (err) {
        console.error(`release: notarising ${target} failed: ${(err as Error).message}`);
        process.exit(1);
      }
      console.log(`notarised ${target}`);
    }
  }
  const runner = starter(target);
  if (runner) await smokeTest(target, [...runner, binary]);

  await Bun.write(join(staging, "memproxy.sha256"), `${await sha256(binary)}  memproxy\n`);
  if (await Bun.file(join(root, "README.md")).exists()) await cp(join(root, "README.md"), join(staging, "README.md"));
  const example = (await Bun.file(join(root, "config.example.yaml")).exists()) ? join(root, "config.example.yaml") : join(root, "src", "default-config.yaml");
  await cp(example, join(staging, "config.example.yaml"));
  await cp(join(root, "scripts", "install.sh"), join(staging, "install.sh"));
  await chmod(join(staging, "install.sh"), 0o755);

  const archive = `${name}.tar.gz`;
  await run(["tar", "-czf", join(out, archive), "-C", join(out, ".staging"), name]);
  await Bun.write(join(out, `${archive}.sha256`), `${await sha256(join(out, archive))}  ${archive}\n`);
  await rm(staging, { recursive: true, force: true });
  built.push(archive);
  console.log(`built ${join(out, archive)}`);
}
await rm(join(out, ".staging"), { recursive: true, force: true });

if (built.length) {
  // install.sh also travels beside the archives, so that an archive can be checked before it is opened.
  await cp(join(root, "scripts", "install.sh"), join(out, "install.sh"));
  await chmod(join(out, "install.sh"), 0o755);
  const sums = await Promise.all(built.map(async (a) => `${await sha256(join(out, a))}  ${a}\n`));
  await Bun.write(join(out, "SHA256SUMS"), sums.join(""));
}
console.log(`memproxy ${VERSION}: ${built.length} built${skipped.length ? `, skipped ${skipped.join(", ")}` : ""} in ${out}`);
if (!built.length) {
  console.error("release: nothing was built");
  process.exit(1);
}
if (values.strict && skipped.length) {
  console.error(`release: --strict: ${skipped.join(", ")} could not be built`);
  process.exit(1);
}

async function sha256(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

async function run(cmd: string[]): Promise<void> {
  const proc = Bun.spawn(cmd, { stdout: "inherit", stderr: "inherit" });
  const code = await proc.exited;
  if (code !== 0) {
    console.error(`release: '${cmd.join(" ")}' failed (exit ${code})`);
    process.exit(1);
  }
}

/**
 * How this machine can start a target's binary: directly (its own target), under QEMU user emulation
 * (linux-arm64 on linux-x64, with Debian's arm64 C library), or not at all (undefined).
 */
function starter(target: string): string[] | undefined {
  if (target === HOST) return [];
  if (target === "linux-arm64" && HOST === "linux-x64") {
    const qemu = Bun.which("qemu-aarch64-static") ?? Bun.which("qemu-aarch64");
    if (qemu) return existsSync("/usr/aarch64-linux-gnu") ? [qemu, "-L", "/usr/aarch64-linux-gnu"] : [qemu];
  }
  return undefined;
}

/** The binary must start and report the version it was built as. */
async function smokeTest(target: string, cmd: string[]): Promise<void> {
  const proc = Bun.spawn([...cmd, "--version"], { stdout: "pipe", stderr: "pipe", env: { PATH: process.env.PATH } });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  if (code !== 0 || stdout.trim() !== versionLine) {
    console.error(`release: ${target}: '${cmd.join(" ")} --version' printed ${JSON.stringify(stdout.trim())} (exit ${code}), expected ${JSON.stringify(versionLine)}\n${stderr}`);
    process.exit(1);
  }
  console.log(`started ${target}${cmd.length > 1 ? ` (under ${cmd[0]})` : ""}: ${stdout.trim()}`);
}
