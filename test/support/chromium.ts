// A tiny Chrome DevTools Protocol driver for Debian's headless Chromium, over Bun's WebSocket (tests only).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LineLog } from "./process.ts";

/** The Chromium executable: Debian's package (`apt-get install chromium`) unless MEMPROXY_CHROMIUM says otherwise. */
export const CHROMIUM = process.env.MEMPROXY_CHROMIUM ?? "/usr/bin/chromium";

/** Whether Chromium is installed here. */
export function chromiumAvailable(): boolean {
  return existsSync(CHROMIUM);
}

/** A running headless Chromium. */
export interface Browser extends AsyncDisposable {
  /** Opens a new tab (about:blank) with the Page and Runtime domains on. */
  newPage(): Promise<Page>;
  /** Closes the browser and removes its profile. Idempotent. */
  close(): Promise<void>;
}

/** One tab. */
export interface Page {
  /** Sends a CDP command to this tab; resolves with its result. */
  send(method: string, params?: Record<string, unknown>): Promise<any>;
  /** Goes to `url` and resolves when its load event fired. */
  navigate(url: string): Promise<void>;
  /** Evaluates an expression in the page (a promise is awaited); resolves with its value (JSON). */
  evaluate<T = unknown>(expression: string): Promise<T>;
  /**
   * Resolves with the value of `expression` once it is truthy: tested now and after every change
   * of the document (a MutationObserver in the page), never on a timer.
   */
  waitFor<T = unknown>(expression: string): Promise<T>;
  /** Clicks the centre of the first element matching `selector` with real mouse events. */
  click(selector: string): Promise<void>;
  /** Focuses the element matching `selector`, empties it, and types `text` as keyboard input. */
  type(selector: string, text: string): Promise<void>;
  /** Sets the viewport (CSS pixels). */
  viewport(width: number, height: number, scale?: number): Promise<void>;
  /** Emulates prefers-color-scheme. */
  colorScheme(scheme: "light" | "dark"): Promise<void>;
  /** A PNG of the whole page (not only the viewport). */
  screenshot(): Promise<Uint8Array>;
  /** Messages of JavaScript dialogs the page opened (alert, confirm, prompt); each was dismissed. */
  readonly dialogs: string[];
  /** Uncaught exceptions, console errors and browser log errors (a CSP violation is one). */
  readonly errors: string[];
}

interface Pending {
  resolve: (v: any) => void;
  reject: (e: Error) => void;
  method: string;
}

type Listener = (params: any) => void;

const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--no-default-browser-check",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--disable-extensions",
  "--hide-scrollbars",
  "--mute-audio",
  "--force-color-profile=srgb",
  "--remote-debugging-port=0",
];

/**
 * Starts headless Chromium with a fresh profile and connects to it, at the DevTools endpoint that
 * Chromium prints once it listens (--remote-debugging-port=0: a free port it chose).
 */
export async function launchChromium(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), "memproxy-chromium-"));
  const proc = Bun.spawn([CHROMIUM, ...FLAGS, `--user-data-dir=${profile}`, "about:blank"], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  // One reader for all of stderr (Chromium must never block on a full pipe); it says when DevTools listens.
  const { log } = LineLog.of(proc);
  let ws: WebSocket;
  try {
    // The line names the browser's endpoint, e.g. ws://127.0.0.1:40123/devtools/browser/<id>: the same
    // port and path that the profile's DevToolsActivePort holds, which is written only after this line.
    const listening = await log.waitFor(/^DevTools listening on ws:\/\/\S+/).catch(() => undefined);
    if (listening === undefined) throw new Error(`Chromium exited before listening (code ${await proc.exited}):\n${log.all.join("\n")}`);
    const url = /ws:\/\/\S+/.exec(listening)![0];
    ws = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      ws.onopen = () => resolve();
      ws.onerror = () => reject(new Error(`cannot connect to Chromium's DevTools at ${url}`));
    });
  } catch (err) {
    proc.kill("SIGKILL");
    await proc.exited;
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }

  let nextId = 1;
  const pending = new Map<number, Pending>();
  const listeners = new Map<string, Set<Listener>>(); // key: sessionId + " " + method
  ws.onmessage = (e) => {
    const msg = JSON.parse(String(e.data));
    if (msg.id !== undefined) {
      const p = pending.get(msg.id);
      if (!p) return;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}${msg.error.data ? ` (${msg.error.data})` : ""}`));
      else p.resolve(msg.result);
      return;
    }
    for (const fn of listeners.get(`${msg.sessionId ?? ""} ${msg.method}`) ?? []) fn(msg.params);
  };
  ws.onclose = () => {
    for (const p of pending.values()) p.reject(new Error(`${p.method}: the connection to Chromium closed`));
    pending.clear();
  };
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, method });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }));
    });
  const on = (sessionId: string, method: string, fn: Listener) => {
    const key = `${sessionId} ${method}`;
    if (!listeners.has(key)) listeners.set(key, new Set());
    listeners.get(key)!.add(fn);
    return () => listeners.get(key)!.delete(fn);
  };
  const once = (sessionId: string, method: string) =>
    new Promise<any>((resolve) => {
      const off = on(sessionId, method, (p) => {
        off();
        resolve(p);
      });
    });

  async function newPage(): Promise<Page> {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
    const call = (method: string, params?: Record<string, unknown>) => send(method, params, sessionId);
    const dialogs: string[] = [];
    const errors: string[] = [];
    on(sessionId, "Page.javascriptDialogOpening", (p) => {
      dialogs.push(p.message);
      void call("Page.handleJavaScriptDialog", { accept: false });
    });
    on(sessionId, "Runtime.exceptionThrown", (p) => errors.push(p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text));
    on(sessionId, "Runtime.consoleAPICalled", (p) => {
      if (p.type === "error") errors.push(p.args.map((a: any) => a.value ?? a.description).join(" "));
    });
    on(sessionId, "Log.entryAdded", (p) => {
      if (p.entry.level === "error") errors.push(`${p.entry.source}: ${p.entry.text}`);
    });
    await Promise.all([call("Page.enable"), call("Runtime.enable"), call("Log.enable")]);

    const evaluate = async <T>(expression: string): Promise<T> => {
      const r = await call("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
      if (r.exceptionDetails) {
        throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}\nevaluating: ${expression}`);
      }
      return r.result.value as T;
    };
    return {
      send: call,
      dialogs,
      errors,
      async navigate(url) {
        const loaded = once(sessionId, "Page.loadEventFired");
        const r = await call("Page.navigate", { url });
        if (r.errorText) throw new Error(`cannot open ${url}: ${r.errorText}`);
        await loaded;
      },
      evaluate,
      waitFor<T>(expression: string) {
        return evaluate<T>(`new Promise((resolve) => {
          const test = () => { try { return (${expression}); } catch { return undefined; } };
          const now = test();
          if (now) return resolve(now);
          const observer = new MutationObserver(() => {
            const v = test();
            if (v) { observer.disconnect(); resolve(v); }
          });
          observer.observe(document, { subtree: true, childList: true, characterData: true, attributes: true });
        })`);
      },
      async click(selector) {
        const box = await evaluate<{ x: number; y: number } | null>(`(() => {
          const e = document.querySelector(${JSON.stringify(selector)});
          if (!e) return null;
          e.scrollIntoView({ block: "center" });
          const r = e.getBoundingClientRect();
          return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
        })()`);
        if (!box) throw new Error(`click: nothing matches ${selector}`);
        for (const type of ["mouseMoved", "mousePressed", "mouseReleased"]) {
          await call("Input.dispatchMouseEvent", { type, x: box.x, y: box.y, button: "left", clickCount: 1 });
        }
      },
      async type(selector, text) {
        const found = await evaluate<boolean>(`(() => {
          const e = document.querySelector(${JSON.stringify(selector)});
          if (!e) return false;
          e.focus();
          e.select?.();
          return true;
        })()`);
        if (!found) throw new Error(`type: nothing matches ${selector}`);
        await call("Input.insertText", { text });
      },
      async viewport(width, height, scale = 1) {
        await call("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: scale, mobile: false });
      },
      async colorScheme(scheme) {
        await call("Emulation.setEmulatedMedia", { features: [{ name: "prefers-color-scheme", value: scheme }] });
      },
      async screenshot() {
        const { cssContentSize } = await call("Page.getLayoutMetrics");
        const clip = { x: 0, y: 0, width: Math.ceil(cssContentSize.width), height: Math.ceil(cssContentSize.height), scale: 1 };
        const { data } = await call("Page.captureScreenshot", { format: "png", clip, captureBeyondViewport: true });
        return Uint8Array.from(Buffer.from(data, "base64"));
      },
    };
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      try {
        await Promise.race([send("Browser.close"), proc.exited]);
      } catch {
        // already gone
      }
      ws.close();
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await proc.exited;
      rmSync(profile, { recursive: true, force: true });
    })());
  return { newPage, close, [Symbol.asyncDispose]: close };
}
