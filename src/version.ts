// The package version, embedded in the compiled binary at build time (Bun bundles the JSON import).
import pkg from "../package.json" with { type: "json" };

/** memproxy's version, from package.json. */
export const VERSION: string = pkg.version;
