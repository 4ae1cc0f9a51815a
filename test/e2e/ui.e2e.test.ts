// The status page in a real browser: Debian's headless Chromium drives the page served by memproxy, while real
// requests go through memproxy to a recording backend. Writes the README's screenshot.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readJson, startBackend, type RecordingBackend } from "../support/backend.ts";
import { CHROMIUM, chromiumAvailable, launchChromium, type Browser, type Page } from "../support/chromium.ts";
import { compiledBinary, spawnMemproxy } from "../support/memproxy.ts";
import { tempDir } from "../support/process.ts";

const SCREENSHOT = join(import.meta.dir, "screenshots", "status-page.png");
const KEY = "e2e-status-page-access-key";
const CI = process.env.CI === "true";
const missing = chromiumAvailable() ? undefined : `no Chromium at ${CHROMIUM}`;
if (missing && !CI) {
  console.warn(`ui.e2e.test.ts: skipping the status page in a browser: ${missing}. Install it with: apt-get update && apt-get install -y chromium`);
}
test.if(Boolean(missing) && CI)("Chromium is installed (required in CI)", () => {
  throw new Error(`${missing}. Install it with: apt-get install -y --no-install-recommends chromium (see .ci/run)`);
});

/** memproxy with its page, in front of `backend`, with one access key. */
interface Target extends AsyncDisposable {
  readonly url: string;
}

const configYaml = (backend: string) => `
litellm_backend_url: ${backend}
user_id_mappings:
  custom_header: x-memory-user-id
  header_patterns:
    - header: user-agent
      pattern: "claude-cli/"
      user_id: claude-cli
    - header: user-agent
      pattern: "codex_cli_rs/"
      user_id: codex
  default_user_id: default-dev
memproxy:
  access:
    keys: ["${KEY}"]
`;

/** The real compiled memproxy, serving the page on its own port. */
async function startCompiledMemproxy(backend: string): Promise<Target> {
  const dir = tempDir("ui-e2e");
  writeFileSync(dir.file("memproxy.yaml"), configYaml(backend));
  const proc = spawnMemproxy([await compiledBinary(), "--config", dir.file("memproxy.yaml"), "--port", "0"]);
  const url = await proc.listening();
  return {
    url,
    async [Symbol.asyncDispose]() {
      await proc[Symbol.asyncDispose]();
      dir[Symbol.dispose]();
    },
  };
}

const startMemproxy = startCompiledMemproxy;

/** A chat completion through memproxy, as a tool would send it. */
async function chat(target: Target, headers: Record<string, string>, model = "claude-sonnet-4-5"): Promise<Response> {
  const res = await fetch(target.url + "/v1/chat/completions", {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hello" }] }),
  });
  await res.arrayBuffer();
  return res;
}

/** The text of each cell of the table's rows (details rows left out). */
const rowsOf = (table: string) => `[...document.querySelectorAll("#${table} tbody tr:not(.details)")].map((r) => [...r.cells].map((c) => c.textContent))`;

describe.skipIf(Boolean(missing))("the status page in headless Chromium", () => {
  let backend: RecordingBackend;
  let target: Target;
  let browser: Browser;
  let page: Page;
  let proxied = 0;

  beforeAll(async () => {
    // A provider behind Supermemory's router: the answer carries usage and the router's headers.
    backend = startBackend((_req, r) => {
      const id = r.headers.get("x-sm-user-id");
      const memory: Record<string, string> =
        // my-project's answers come back through LiteLLM without the router's headers: memory is not in its chain.
        id === "my-project" ? { "llm_provider-content-type": "application/json" } : id === "opencode" ? { "x-supermemory-error": "rate limited" } : { "x-supermemory-context-modified": "true", "x-supermemory-chunks-retrieved": "3" };
      return Response.json(
        { id: "chatcmpl-1", object: "chat.completion", choices: [{ index: 0, message: { role: "assistant", content: "hi" }, finish_reason: "stop" }], usage: { prompt_tokens: 1200, completion_tokens: 240, total_tokens: 1440 } },
        { headers: memory },
      );
    });
    target = await startMemproxy(backend.url);
    browser = await launchChromium();
    page = await browser.newPage();
    await page.viewport(1280, 900);
    await page.colorScheme("light");
  });

  afterAll(async () => {
    await browser?.close();
    await target?.[Symbol.asyncDispose]();
    await backend?.stop();
  });

  test("asks for an access key, refuses a wrong one, and keeps the right one in session storage only", async () => {
    await page.navigate(target.url + "/");
    await page.waitFor(`!document.getElementById("login").hidden && document.getElementById("app").hidden`);
    await page.type("#key", "not-the-right-key-at-all");
    await page.click("#login-form button[type=submit]");
    expect(await page.waitFor<string>(`document.getElementById("login-error").textContent`)).toBe("That key was not accepted.");
    await page.type("#key", KEY);
    await page.click("#login-form button[type=submit]");
    await page.waitFor(`document.getElementById("live").dataset.state === "live" && !document.getElementById("app").hidden`);
    expect(await page.evaluate(`sessionStorage.getItem("memproxy.accessKey")`)).toBe(KEY);
    expect(await page.evaluate(`location.href`)).toBe(target.url + "/");
    expect(await page.evaluate(`document.getElementById("key").value`)).toBe("");
  });

  test("a request made through memproxy appears live, with its memory id, in the tools and the recent requests", async () => {
    const res = await chat(target, { "user-agent": "claude-cli/2.1.197 (external, cli)" });
    proxied++;
    expect(res.status).toBe(200);
    expect(backend.received.at(-1)!.headers.get("x-sm-user-id")).toBe("claude-cli");
    const recent = await page.waitFor<string[]>(`${rowsOf("recent")}.find((c) => c[2] === "/v1/chat/completions" && c[3] === "claude-cli")`);
    expect(recent).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d$/), "POST", "/v1/chat/completions", "claude-cli", "claude-sonnet-4-5", "200", expect.stringMatching(/ms$/), "1,200 / 240"]);
    const tool = await page.waitFor<string[]>(`${rowsOf("tools")}.find((c) => c[1] === "claude-cli")`);
    expect(tool[0]).toContain("claude-cli");
    expect(tool[2]).toMatch(/claude-cli\/|Claude Code/); // the rule that matched
    expect(tool[3]).toBe("on"); // the memory layer answered
    expect(tool[4]).toBe("1");
    const memory = await page.waitFor<string[]>(`${rowsOf("memory")}.find((c) => c[0] === "claude-cli")`);
    expect(memory.slice(0, 4)).toEqual(["claude-cli", "on", "1", "1"]);
  });

  test("a User-Agent with markup is shown as text and never runs", async () => {
    const ua = `<script>alert(1)</script><img src=x onerror=alert(2)>`;
    expect((await chat(target, { "user-agent": ua, "x-memory-user-id": "xss-probe" })).status).toBe(200);
    proxied++;
    const name = await page.waitFor<string>(`${rowsOf("tools")}.find((c) => c[1] === "xss-probe")?.[0]`);
    expect(name).toContain("<script>alert(1)</script><img");
    // One click away: the details show the whole User-Agent, as text.
    const child = await page.evaluate<number>(`(() => {
      const rows = [...document.querySelector("#tools tbody").children];
      return rows.findIndex((r) => r.cells[1].textContent === "xss-probe") + 1;
    })()`);
    await page.click(`#tools tbody > tr:nth-child(${child})`);
    const details = await page.waitFor<string>(`[...document.querySelectorAll("#tools tr.details dd")].map((d) => d.textContent).find((t) => t.startsWith("<script>"))`);
    expect(details).toBe(ua);
    expect(await page.evaluate(`document.querySelectorAll("script").length`)).toBe(1); // app.js only
    expect(await page.evaluate(`[...document.images].map((i) => i.getAttribute("src"))`)).toEqual(["/ui/icon.svg"]);
    expect(page.dialogs).toEqual([]);
  });

  test("the rule tester shows the decision, computed by the server's router, and a refusal", async () => {
    await page.type("#tester-headers", "User-Agent: OpenAI/Python 1.99.2\nx-memory-user-id: my-project");
    await page.click("#tester button[type=submit]");
    const verdict = await page.waitFor<string>(`!document.getElementById("tester-result").hidden && document.querySelector("#tester-result .verdict").textContent`);
    expect(verdict).toStartWith("Memory idmy-projectbecause: own header");
    await page.type("#tester-headers", "x-memory-user-id: not a valid id!");
    await page.click("#tester button[type=submit]");
    const refused = await page.waitFor<string>(`(() => { const t = document.querySelector("#tester-result .verdict").textContent; return t.startsWith("refused") && t; })()`);
    expect(refused).toContain("refused 400");
    expect(refused).toContain("x-memory-user-id");
    await page.type("#tester-headers", "User-Agent: codex_cli_rs/0.171.0 (Debian 12; x86_64) xterm");
    await page.click("#tester button[type=submit]");
    expect(await page.waitFor<string>(`(() => { const t = document.querySelector("#tester-result .verdict").textContent; return t.includes("codex") && t; })()`)).toContain(
      "Memory idcodexbecause: ",
    );
  });

  test("the page's own requests are not counted as traffic, and nothing on it broke the CSP", async () => {
    const state = await readJson(await fetch(target.url + "/ui/api/state", { headers: { authorization: `Bearer ${KEY}` } }));
    expect(state.totals.requests).toBe(proxied);
    expect(state.tools.map((t: any) => t.product)).not.toContain("Mozilla");
    expect((await fetch(target.url + "/ui/api/state")).status).toBe(401);
    // A 401 the page asked for is logged by Chromium as a failed load: that one is expected.
    expect(page.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
  });

  test("screenshot for the README, after some traffic from several tools", async () => {
    const tools: [Record<string, string>, string][] = [
      [{ "user-agent": "codex_cli_rs/0.171.0 (Debian 12.0.0; x86_64) xterm" }, "gpt-5-codex"],
      [{ "user-agent": "OpenAI/Python 1.99.2", "x-memory-user-id": "my-project" }, "gpt-4o-mini"],
      [{ "user-agent": "opencode/1.18.33 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.14", "x-memory-user-id": "opencode" }, "qwen3-coder"],
      [{ "user-agent": "claude-cli/2.1.197 (external, cli)" }, "claude-sonnet-4-5"],
    ];
    for (let i = 0; i < 12; i++) {
      const [headers, model] = tools[i % tools.length]!;
      expect((await chat(target, headers, model)).status).toBe(200);
      proxied++;
    }
    const refused = await fetch(target.url + "/v1/models", { headers: { "user-agent": "curl/8.5.0" } });
    expect(refused.status).toBe(401);
    proxied++;
    await page.waitFor(`${rowsOf("tools")}.length >= 6 && ${rowsOf("recent")}.length >= 15`);
    await page.evaluate(`document.querySelectorAll("#tools tr.open").forEach((r) => r.click())`);
    await page.type("#tester-headers", "User-Agent: claude-cli/2.1.197 (external, cli)");
    await page.click("#tester button[type=submit]");
    await page.waitFor(`document.querySelector("#tester-result .verdict").textContent.includes("claude-cli")`);
    await page.waitFor(`document.getElementById("s-requests").textContent === "${proxied}"`);
    const png = await page.screenshot();
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // README's picture is replaced only when asked for, so that a test run leaves the checkout as it was.
    if (process.env.MEMPROXY_UPDATE_SCREENSHOT) {
      mkdirSync(join(import.meta.dir, "screenshots"), { recursive: true });
      writeFileSync(SCREENSHOT, png);
    }
  });

  test("dark mode follows the system, and a narrow window needs no sideways scrolling", async () => {
    const look = () =>
      page.evaluate<{ bg: string; text: string; overflow: number }>(
        `({ bg: getComputedStyle(document.body).backgroundColor, text: getComputedStyle(document.body).color, overflow: document.documentElement.scrollWidth - innerWidth })`,
      );
    try {
      await page.colorScheme("dark");
      await page.viewport(390, 844);
      expect(await look()).toEqual({ bg: "rgb(13, 16, 20)", text: "rgb(228, 231, 235)", overflow: 0 });
      expect(page.errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    } finally {
      await page.viewport(1280, 900);
      await page.colorScheme("light");
    }
    expect(await look()).toEqual({ bg: "rgb(244, 246, 248)", text: "rgb(26, 31, 38)", overflow: 0 });
  });

  test("signing out forgets the key", async () => {
    await page.click("#logout");
    await page.waitFor(`!document.getElementById("login").hidden`);
    expect(await page.evaluate(`sessionStorage.getItem("memproxy.accessKey")`)).toBeNull();
  });
});
