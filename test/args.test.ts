import { describe, expect, test } from "bun:test";
import { ArgsError, readArgs } from "../src/args.ts";

const OPTIONS = { port: { type: "string", short: "p" }, "dry-run": { type: "boolean" } } as const;
const problem = (args: string[]) => {
  try {
    readArgs(args, OPTIONS);
  } catch (err) {
    expect(err).toBeInstanceOf(ArgsError);
    return (err as Error).message;
  }
  throw new Error("no error");
};

describe("readArgs", () => {
  test("reads options and positionals", () => {
    expect(readArgs(["check", "-p", "9", "--dry-run"], OPTIONS)).toEqual({ values: { port: "9", "dry-run": true }, positionals: ["check"] });
  });

  test("says what is wrong in memproxy's words, without Node's advice about '--'", () => {
    expect(problem(["--bogus"])).toBe("unknown option '--bogus'");
    expect(problem(["--bogus=3"])).toBe("unknown option '--bogus'");
    expect(problem(["-x"])).toBe("unknown option '-x'");
    expect(problem(["--port"])).toBe("-p, --port needs a value");
    expect(problem(["--dry-run=yes"])).toBe("--dry-run takes no value");
  });
});
