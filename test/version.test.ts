// src/version.ts: what --version says when memproxy runs from source (the compiled binary's: test/build.test.ts).
import { expect, test } from "bun:test";
import pkg from "../package.json" with { type: "json" };
import { BUILD_COMMIT, BUILD_DATE, VERSION, versionText } from "../src/version.ts";
import { runToEnd } from "./support/process.ts";

test("from source: the package version, 'source' for the commit and the build date, and the Bun it runs on", () => {
  expect(VERSION).toBe(pkg.version);
  expect([BUILD_COMMIT, BUILD_DATE]).toEqual(["source", "source"]);
  expect(versionText()).toBe(`memproxy ${pkg.version} (commit source, built source, bun ${Bun.version})`);
});

test("bun src/main.ts --version prints it", async () => {
  const { stdout, stderr, code } = await runToEnd([process.execPath, "src/main.ts", "--version"], { cwd: `${import.meta.dir}/..` });
  expect({ stdout, stderr, code }).toEqual({ stdout: `memproxy ${pkg.version} (commit source, built source, bun ${Bun.version})\n`, stderr: "", code: 0 });
});
