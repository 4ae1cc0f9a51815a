// Signing and verifying the darwin binaries on Linux with rcodesign (the apple-codesign crate, installed by
// scripts/setup-release-tools.sh): ad hoc by default; with a Developer ID and notarisation when the
// MEMPROXY_SIGN_* / MEMPROXY_NOTARY_* variables are set.
//
// `bun build --compile` leaves darwin binaries with signatures that do not match their contents (darwin-x64
// keeps the Bun runtime's own Developer ID signature, over bytes the bundle has since changed), and macOS
// kills such a binary at launch. Signing replaces that signature with one over the final bytes.
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";

const SETUP_SCRIPT = join(import.meta.dir, "setup-release-tools.sh");

/** The rcodesign version scripts/setup-release-tools.sh pins (read from the script, so that both agree). */
export const RCODESIGN_VERSION: string = /^RCODESIGN_VERSION="([^"]+)"/m.exec(readFileSync(SETUP_SCRIPT, "utf8"))![1]!;

/** The identifier the binaries are signed with (macOS shows it, and keys some settings to it). */
export const IDENTIFIER = "memproxy";

/**
 * The entitlements the binaries are signed with, with the hardened runtime: the set the Bun runtime's own
 * release signature carries (read from Bun's darwin-x64 binary), which JavaScriptCore's JIT needs under the
 * hardened runtime. Ad hoc and Developer ID signatures differ only by the certificate: rcodesign would
 * otherwise keep whatever flags and entitlements the template it re-signs had (darwin-x64: Bun's, darwin-arm64:
 * none), and notarisation requires the hardened runtime.
 */
const ENTITLEMENTS = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>com.apple.security.cs.allow-jit</key>
    <true/>
    <key>com.apple.security.cs.allow-unsigned-executable-memory</key>
    <true/>
    <key>com.apple.security.cs.disable-executable-page-protection</key>
    <true/>
    <key>com.apple.security.cs.allow-dyld-environment-variables</key>
    <true/>
    <key>com.apple.security.cs.disable-library-validation</key>
    <true/>
</dict>
</plist>
`;

/**
 * Where rcodesign is: MEMPROXY_RCODESIGN_BIN, else the cache scripts/setup-release-tools.sh installs into
 * (the build with notarisation first), else `rcodesign` on PATH.
 */
export function findRcodesign(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.MEMPROXY_RCODESIGN_BIN) return env.MEMPROXY_RCODESIGN_BIN;
  const cache = env.MEMPROXY_CACHE_DIR ?? join(env.HOME ?? homedir(), ".cache", "memproxy");
  for (const dir of [`rcodesign-${RCODESIGN_VERSION}-notarize`, `rcodesign-${RCODESIGN_VERSION}`]) {
    const bin = join(cache, dir, "bin", "rcodesign");
    if (Bun.which(bin)) return bin;
  }
  return Bun.which("rcodesign", { PATH: env.PATH ?? "" }) ?? undefined;
}

/** How the darwin binaries are signed, from the environment. */
export interface SigningSettings {
  /** A Developer ID Application certificate with its key (PKCS#12); ad hoc without one. */
  p12File?: string;
  /** The .p12's password: a file holding it, or the password itself. */
  p12PasswordFile?: string;
  p12Password?: string;
  /** An App Store Connect API key (the JSON `rcodesign encode-app-store-connect-api-key` writes): notarise with it. */
  notaryApiKeyFile?: string;
}

/**
 * The signing settings in `env`: MEMPROXY_SIGN_P12_FILE, MEMPROXY_SIGN_P12_PASSWORD_FILE or MEMPROXY_SIGN_P12_PASSWORD,
 * MEMPROXY_NOTARY_API_KEY_FILE.
 * @throws Error when they do not make sense together (notarising needs a Developer ID).
 */
export function signingSettings(env: Record<string, string | undefined> = process.env): SigningSettings {
  const settings: SigningSettings = {
    p12File: env.MEMPROXY_SIGN_P12_FILE || undefined,
    p12PasswordFile: env.MEMPROXY_SIGN_P12_PASSWORD_FILE || undefined,
    p12Password: env.MEMPROXY_SIGN_P12_PASSWORD || undefined,
    notaryApiKeyFile: env.MEMPROXY_NOTARY_API_KEY_FILE || undefined,
  };
  if (settings.notaryApiKeyFile && !settings.p12File) {
    throw new Error("MEMPROXY_NOTARY_API_KEY_FILE is set but MEMPROXY_SIGN_P12_FILE is not: Apple notarises only binaries signed with a Developer ID");
  }
  if ((settings.p12PasswordFile || settings.p12Password) && !settings.p12File) {
    throw new Error("a .p12 password is set but MEMPROXY_SIGN_P12_FILE is not: set it to your Developer ID Application certificate (.p12)");
  }
  return settings;
}

/** What a command printed and how it ended. */
interface Ran {
  code: number;
  output: string;
}

async function run(cmd: string[]): Promise<Ran> {
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([proc.stdout.text(), proc.stderr.text(), proc.exited]);
  return { code, output: `${stdout}${stderr}`.trim() };
}

/**
 * Signs the Mach-O binary in place, replacing the signature it has: hardened runtime with Bun's entitlements,
 * identifier "memproxy"; with the Developer ID of `settings` (and a secure timestamp, as notarisation requires)
 * or else ad hoc.
 * @returns how it was signed, for the release log.
 * @throws Error with rcodesign's output when signing fails.
 */
export async function signDarwin(binary: string, rcodesign: string, settings: SigningSettings = {}): Promise<string> {
  const work = mkdtempSync(join(tmpdir(), "memproxy-sign-"));
  try {
    const entitlements = join(work, "entitlements.plist");
    writeFileSync(entitlements, ENTITLEMENTS);
    const cmd = [rcodesign, "sign", "--binary-identifier", IDENTIFIER, "--code-signature-flags", "runtime", "--entitlements-xml-file", entitlements];
    let how = "ad hoc";
    if (settings.p12File) {
      cmd.push("--for-notarization", "--p12-file", settings.p12File);
      if (settings.p12PasswordFile) cmd.push("--p12-password-file", settings.p12PasswordFile);
      else if (settings.p12Password) {
        // Through a private file, never the command line (which other users can read in the process list).
        const passwordFile = join(work, "p12-password");
        writeFileSync(passwordFile, settings.p12Password, { mode: 0o600 });
        cmd.push("--p12-password-file", passwordFile);
      }
      how = `Developer ID (${basename(settings.p12File)})`;
    }
    cmd.push(binary);
    const r = await run(cmd);
    if (r.code !== 0) throw new Error(`rcodesign sign ${binary} failed (exit ${r.code}):\n${r.output}`);
    return how;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** What a signature says about itself (from `rcodesign print-signature-info`). */
export interface SignatureInfo {
  identifier: string;
  /** The code signature flags, e.g. ["ADHOC", "RUNTIME"]. */
  flags: string[];
  /** How many bytes the code digests cover (the code limit), and where the signature starts. */
  signedSize: number;
  signatureStart: number;
  /** How many code pages have a digest. */
  codeDigests: number;
}

/** What verifying a signature found. */
export interface Verification {
  ok: boolean;
  /** Each problem rcodesign verify reported (digest mismatches, missing digests, ...) or the coverage check found. */
  problems: string[];
  info?: SignatureInfo;
}

// rcodesign verify's banner and closing line, and what it says about the empty CMS blob of every ad-hoc signature
// (Apple's codesign writes the same blob): not problems of the binary.
const VERIFY_NOISE = [/^\(the verify command is known to be buggy/, /^Error: problems reported during verification$/];
const ADHOC_CMS = [/^no cryptographic signature present$/, /^CMS error: missing further values/];
/** The code page size rcodesign and Bun sign with (print-signature-info does not show it). */
const PAGE_SIZE = 4096;

/**
 * Verifies the binary's code signature: `rcodesign verify` must report no problem (for an ad-hoc signature, its
 * complaint about the empty CMS blob is not one), and the code digests must cover every page up to the signature.
 */
export async function verifyDarwin(binary: string, rcodesign: string): Promise<Verification> {
  let info: SignatureInfo;
  try {
    info = await signatureInfo(binary, rcodesign);
  } catch (err) {
    return { ok: false, problems: [(err as Error).message] };
  }
  const r = await run([rcodesign, "verify", binary]);
  const adhoc = info.flags.includes("ADHOC");
  const problems = r.output
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !VERIFY_NOISE.some((re) => re.test(l)) && !(adhoc && ADHOC_CMS.some((re) => re.test(l))));
  if (r.code !== 0 && !problems.length && !adhoc) problems.push(`rcodesign verify exited ${r.code}`);
  if (info.signedSize !== info.signatureStart) {
    problems.push(`the code digests cover ${info.signedSize} bytes, but the signature starts at ${info.signatureStart}: the bytes between are not signed`);
  }
  const pages = Math.ceil(info.signedSize / PAGE_SIZE);
  if (info.codeDigests !== pages) problems.push(`${info.codeDigests} code digests for ${pages} pages`);
  return { ok: problems.length === 0, problems, info };
}

/** Reads what the binary's (thin Mach-O) signature says about itself, with `rcodesign print-signature-info`. */
export async function signatureInfo(binary: string, rcodesign: string): Promise<SignatureInfo> {
  const r = await run([rcodesign, "print-signature-info", binary]);
  if (r.code !== 0) throw new Error(`rcodesign print-signature-info ${binary} failed (exit ${r.code}):\n${r.output}`);
  const field = (name: string) => {
    const m = new RegExp(`^\\s*${name}: (.*)$`, "m").exec(r.output);
    if (!m) throw new Error(`rcodesign print-signature-info ${binary}: no ${name} (not signed?):\n${r.output}`);
    return m[1]!.trim();
  };
  const number = (name: string) => Number(field(name).split(" ")[0]);
  const flags = /CodeSignatureFlags\(([^)]*)\)/.exec(field("flags"))?.[1] ?? "";
  return {
    identifier: field("identifier"),
    flags: flags.split("|").map((f) => f.trim()).filter(Boolean),
    signedSize: number("signed_entity_size"),
    signatureStart: number("macho_signature_start_offset"),
    codeDigests: number("code_digests_count"),
  };
}

/**
 * Submits the signed binary to Apple's notary service and waits for the verdict. Apple takes zip archives,
 * not bare Mach-O files; a bare binary cannot hold a stapled ticket either, so Gatekeeper looks the ticket
 * up online on first launch.
 * @throws Error with rcodesign's output when Apple does not accept it.
 */
export async function notarizeDarwin(binary: string, rcodesign: string, apiKeyFile: string): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "memproxy-notary-"));
  try {
    const zip = join(work, `${basename(dirname(binary))}.zip`);
    writeFileSync(zip, storedZip(basename(binary), readFileSync(binary)));
    chmodSync(zip, 0o600);
    const r = await run([rcodesign, "notary-submit", "--api-key-file", apiKeyFile, "--wait", zip]);
    if (r.code !== 0) throw new Error(`rcodesign notary-submit failed (exit ${r.code}):\n${r.output}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A zip archive holding one executable file, uncompressed (what the notary service needs; no zip tool required). */
export function storedZip(name: string, data: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const crc = Bun.hash.crc32(data) >>> 0;
  const local = new DataView(new ArrayBuffer(30));
  local.setUint32(0, 0x04034b50, true); // local file header
  local.setUint16(4, 20, true); // version needed
  local.setUint32(14, crc, true);
  local.setUint32(18, data.length, true);
  local.setUint32(22, data.length, true);
  local.setUint16(26, nameBytes.length, true);
  const central = new DataView(new ArrayBuffer(46));
  central.setUint32(0, 0x02014b50, true); // central directory header
  central.setUint16(4, (3 << 8) | 20, true); // made by: Unix, so that the mode below counts
  central.setUint16(6, 20, true);
  central.setUint32(16, crc, true);
  central.setUint32(20, data.length, true);
  central.setUint32(24, data.length, true);
  central.setUint16(28, nameBytes.length, true);
  central.setUint32(38, ((0o100755 << 16) >>> 0) as number, true); // a regular file, rwxr-xr-x
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true); // end of central directory
  end.setUint16(8, 1, true);
  end.setUint16(10, 1, true);
  end.setUint32(12, 46 + nameBytes.length, true);
  end.setUint32(16, 30 + nameBytes.length + data.length, true);
  const parts = [new Uint8Array(local.buffer), nameBytes, data, new Uint8Array(central.buffer), nameBytes, new Uint8Array(end.buffer)];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) out.set(part, at), (at += part.length);
  return out;
}
