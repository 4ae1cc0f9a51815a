// Loaded before every test file (bunfig.toml): what the whole test run shares, and cleans up at its end.
import { afterAll } from "bun:test";
import { removeCompiledBinary } from "./memproxy.ts";

afterAll(() => removeCompiledBinary());
