// Reads CLIENTS.md (beside this file): the checked-in table of what each AI coding tool really sends.
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** One row of the table. */
export interface ClientRow {
  key: string;
  tool: string;
  version: string;
  /** The User-Agent as a template (`<...>` marks a varying part); null when the tool sends none. */
  userAgent: string | null;
  /** Identifying headers as [name, value template] pairs, names lower-cased. */
  headers: [string, string][];
  sessionHeader: string | null;
  memoryId: string;
  source: string;
  /** Recorded here from the real tool (not read in its source). */
  captured: boolean;
}

export const CLIENTS_MD = join(import.meta.dir, "CLIENTS.md");

const ticks = (cell: string) => [...cell.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);

/** The rows of CLIENTS.md's first table. */
export function clientRows(text = readFileSync(CLIENTS_MD, "utf8")): ClientRow[] {
  const lines = text.split("\n");
  const start = lines.findIndex((l) => l.startsWith("| key | tool |"));
  if (start < 0) throw new Error(`${CLIENTS_MD}: no table starting "| key | tool |"`);
  const rows: ClientRow[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").slice(1, -1).map((c) => c.trim());
    if (cells.length !== 10) throw new Error(`${CLIENTS_MD}: a row with ${cells.length} cells instead of 10: ${line}`);
    const [key, tool, version, , , ua, headers, session, id, source] = cells as [string, string, string, string, string, string, string, string, string, string];
    rows.push({
      key,
      tool,
      version,
      userAgent: ticks(ua)[0] ?? null,
      headers: ticks(headers).map((h) => {
        const colon = h.indexOf(": ");
        if (colon < 0) throw new Error(`${CLIENTS_MD}: header ${JSON.stringify(h)} is not "name: value" (row ${key})`);
        return [h.slice(0, colon).toLowerCase(), h.slice(colon + 2)] as [string, string];
      }),
      sessionHeader: ticks(session)[0] ?? null,
      memoryId: ticks(id)[0] ?? "",
      source,
      captured: source === "captured",
    });
  }
  return rows;
}

/** A regular expression for a template: literal text, `<...>` any non-empty run. */
export function templateRegex(template: string): RegExp {
  const parts = template.split(/<[^>]+>/).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".+?")}$`);
}

/** A concrete value for a template: each `<...>` becomes a plausible token. */
export function sampleOf(template: string): string {
  return template.replace(/<[^>]+>/g, "1.2.3");
}
