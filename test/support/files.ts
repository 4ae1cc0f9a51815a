// Files the tests write and what they look for in a process's output.
import { renameSync, writeFileSync } from "node:fs";

/** Writes the file the way editors do: a new file renamed over the old one. */
export function replaceFile(path: string, text: string): void {
  writeFileSync(path + ".tmp", text);
  renameSync(path + ".tmp", path);
}

/** YAML of ten levels of ten aliases each: 10^10 values once expanded. */
export function aliasBomb(): string {
  let bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (let i = 1; i <= 9; i++) bomb += `a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(", ")}]\n`;
  return bomb;
}

/** Lines that look like a JavaScript stack trace or a bundle's source. */
export const STACK_LINE = /^\s+at |ReferenceError|TypeError|SyntaxError|\bfunction\b|=>|\bvar\b/m;
