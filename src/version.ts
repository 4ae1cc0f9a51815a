// What this memproxy is: the package version, and for a compiled binary the commit and date it was built from.
import pkg from "../package.json" with { type: "json" };

// Replaced by string literals when scripts/build.ts compiles the binary (bun build --define); when running from
// source they are not declared at all, and `typeof` of an undeclared name is "undefined", not an error.
declare const MEMPROXY_BUILD_COMMIT: string | undefined;
declare const MEMPROXY_BUILD_DATE: string | undefined;

/** memproxy's version, from package.json. */
export const VERSION: string = pkg.version;

/** The short commit the binary was built from ("-dirty" when the tree had changes, "unknown" outside git); "source" when not built. */
export const BUILD_COMMIT: string = typeof MEMPROXY_BUILD_COMMIT === "string" ? MEMPROXY_BUILD_COMMIT : "source";

/** The day the binary was built (YYYY-MM-DD, UTC); "source" when not built. */
export const BUILD_DATE: string = typeof MEMPROXY_BUILD_DATE === "string" ? MEMPROXY_BUILD_DATE : "source";

/** What `memproxy --version` prints (without the newline), e.g. `memproxy 0.2.0 (commit 1a2b3c4, built 2026-11-28, bun 1.4.5)`. */
export function versionText(): string {
  return `memproxy ${VERSION} (commit ${BUILD_COMMIT}, built ${BUILD_DATE}, bun ${Bun.version})`;
}
