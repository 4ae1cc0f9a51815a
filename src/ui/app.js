// memproxy status page: reads the server's live event stream and draws the page. Everything shown comes
// from strangers (a User-Agent, a path): it is only ever set as textContent, never parsed as HTML.
"use strict";
(() => {
  const KEY_STORAGE = "memproxy.accessKey";
  const RECENT_MAX = 200;
  /** Rows of the recent requests shown until "Show all" is clicked. */
  const RECENT_SHOWN = 15;
  /** The chart shows at least this many buckets, even just after start. */
  const CHART_MIN_BUCKETS = 12;
  const SVG = "http://www.w3.org/2000/svg";
  /** No data at all (not even a heartbeat) for this long: the stream is dead, reconnect. */
  const SILENCE_MS = 45_000;

  const $ = (id) => document.getElementById(id);

  /** An element with a class and text (text only: never HTML). */
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }
  function badge(text, kind, title) {
    const b = el("span", "badge" + (kind ? " " + kind : ""), text);
    if (title) b.title = title;
    return b;
  }
  function td(content, cls) {
    const c = el("td", cls);
    if (content instanceof Node) c.append(content);
    else if (content !== undefined && content !== null) c.textContent = String(content);
    return c;
  }

  // ---- formatting

  function count(n) {
    if (n === null || n === undefined) return "–";
    if (n < 10_000) return Math.round(n).toLocaleString("en-US");
    if (n < 1_000_000) return (n / 1000).toFixed(n < 100_000 ? 1 : 0) + "k";
    return (n / 1_000_000).toFixed(1) + "M";
  }
  function plural(n, word) {
    return count(n) + " " + word + (n === 1 ? "" : "s");
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    if (ms < 10) return ms.toFixed(1) + " ms";
    if (ms < 1000) return Math.round(ms) + " ms";
    if (ms < 60_000) return (ms / 1000).toFixed(1) + " s";
    return Math.floor(ms / 60_000) + " min " + Math.round((ms % 60_000) / 1000) + " s";
  }
  const pad = (n) => String(n).padStart(2, "0");
  function clock(at) {
    const d = new Date(at);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function when(at) {
    if (at === null || at === undefined) return "–";
    const d = new Date(typeof at === "number" ? at : Date.parse(at));
    if (Number.isNaN(d.getTime())) return String(at);
    const today = new Date();
    const sameDay = d.toDateString() === today.toDateString();
    return (sameDay ? "" : d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " ") + clock(d.getTime());
  }
  /** Server time in this browser's clock (they may differ). */
  let skew = 0;
  function ago(at) {
    const s = Math.max(0, Math.round((Date.now() - skew - at) / 1000));
    if (s < 2) return "just now";
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86_400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86_400) + " d ago";
  }
  function agoCell(at, cls) {
    const c = el("td", "num ago" + (cls ? " " + cls : ""), ago(at));
    c.dataset.at = String(at);
    c.title = when(at);
    return c;
  }
  function statusClass(status) {
    if (status >= 500 || status === 0) return "status-bad";
    if (status >= 400) return "status-warn";
    return "status-ok";
  }
  function parseTime(v) {
    return typeof v === "number" ? v : Date.parse(v);
  }

  /** Why a request got its memory id, in words. */
  function why(decidedBy, rule, tool, errorCode) {
    const header = state && state.config && state.config.custom_header;
    switch (decidedBy) {
      case "custom_header":
        return "own header" + (header ? " " + header : "");
      case "rule":
      case "pattern": // the router's name for a configured rule
        return "rule " + (rule || "");
      case "builtin":
        return "built-in rule" + (tool ? ": " + tool : rule ? " " + rule : "");
      case "derived":
        return "derived from User-Agent";
      case "default":
        return "default id";
      default:
        return "refused" + (errorCode ? " (" + errorCode + ")" : "");
    }
  }
  const MEMORY = {
    used: ["on", "ok", "the memory layer answered: memory was used"],
    absent: ["not in chain", "warn", "no x-supermemory-* header came back: the memory layer did not see this request"],
    error: ["error", "bad", "the memory layer reported an error"],
  };
  function memoryBadge(last) {
    const m = MEMORY[last];
    return m ? badge(m[0], m[1], m[2]) : badge("–", "", "no LLM call seen yet");
  }
  function idBadge(userId) {
    return userId === null || userId === undefined ? badge("refused", "bad", "refused before routing") : badge(userId, "id");
  }

  // ---- state

  let key = sessionStorage.getItem(KEY_STORAGE);
  let state = null;
  let recent = [];
  const openRows = new Set();
  let conn = null;
  let retryMs = 1000;
  let retryTimer = 0;
  let lastData = 0;
  let showAllRecent = false;

  function setLive(kind, text) {
    $("live").dataset.state = kind;
    $("live-text").textContent = text;
  }
  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("logout").hidden = !key;
  }
  function showLogin(message) {
    if (conn) conn.abort();
    conn = null;
    $("app").hidden = true;
    $("login").hidden = false;
    $("logout").hidden = true;
    $("login-error").textContent = message || "";
    setLive("failed", "sign-in needed");
    $("key").focus();
  }
  function authHeaders(extra) {
    const h = Object.assign({}, extra);
    if (key) h.authorization = "Bearer " + key;
    return h;
  }
  function forgetKey() {
    key = null;
    sessionStorage.removeItem(KEY_STORAGE);
  }

  // ---- the event stream (fetch and a reader: EventSource cannot send the key)

  async function connect() {
    clearTimeout(retryTimer);
    if (conn) conn.abort();
    const ctl = new AbortController();
    conn = ctl;
    setLive("connecting", "connecting…");
    let res;
    try {
      res = await fetch("/ui/api/events", { headers: authHeaders(), cache: "no-store", signal: ctl.signal });
    } catch {
      if (!ctl.signal.aborted) retry("cannot reach memproxy");
      return;
    }
    if (res.status === 401) {
      const had = !!key;
      forgetKey();
      showLogin(had ? "That key was not accepted." : "");
      return;
    }
    if (!res.ok || !res.body) {
      retry("memproxy answered " + res.status);
      return;
    }
    showApp();
    retryMs = 1000;
    lastData = Date.now();
    setLive("live", "live");
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        lastData = Date.now();
        buffered += decoder.decode(value, { stream: true });
        let end;
        while ((end = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          onBlock(block);
        }
      }
    } catch {
      // aborted or cut: handled below
    }
    if (conn === ctl && !ctl.signal.aborted) retry("connection lost");
  }

  function retry(why) {
    conn = null;
    const s = Math.round(retryMs / 1000);
    setLive("retrying", why + "; retrying in " + s + " s");
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 15_000);
  }

  /** One Server-Sent Events block: "event:" and "data:" lines; comments (":") are heartbeats. */
  function onBlock(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line[0] === ":") continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (field === "event") event = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch {
      return;
    }
    if (event === "snapshot") {
      skew = Date.now() - payload.now;
      recent = payload.recent || [];
      state = payload;
      renderState(true);
      renderRecent(0);
    } else if (event === "state") {
      state = payload;
      renderState();
    } else if (event === "requests" && Array.isArray(payload)) {
      for (const r of payload) recent.unshift(r);
      if (recent.length > RECENT_MAX) recent.length = RECENT_MAX;
      renderRecent(Math.min(payload.length, RECENT_MAX));
    }
  }

  // ---- drawing

  function fillBody(table, rows) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...rows);
    $(table + "-empty").hidden = rows.length > 0;
  }

  /** A clickable row and, when open, its details row below it. */
  function expandable(rowKey, cells, columns, details) {
    const tr = el("tr", "row");
    tr.append(...cells);
    tr.tabIndex = 0;
    const open = openRows.has(rowKey);
    tr.classList.toggle("open", open);
    tr.setAttribute("aria-expanded", String(open));
    const toggle = () => {
      if (openRows.has(rowKey)) openRows.delete(rowKey);
      else openRows.add(rowKey);
      renderState(true);
      renderRecent(0);
    };
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        toggle();
      }
    });
    if (!open) return [tr];
    const d = el("tr", "details");
    const c = el("td");
    c.colSpan = columns;
    c.append(kv(details));
    d.append(c);
    return [tr, d];
  }

  /** A definition list from [label, value] pairs; a value may be a Node; null values are left out. */
  function kv(pairs) {
    const dl = el("dl", "kv");
    for (const [label, value] of pairs) {
      if (value === null || value === undefined) continue;
      dl.append(el("dt", "", label));
      const dd = el("dd");
      if (value instanceof Node) dd.append(value);
      else dd.textContent = String(value);
      dl.append(dd);
    }
    return dl;
  }

  /** What each section was last drawn from: a section is redrawn only when its data changed (a selection survives). */
  const drawn = new Map();
  function changed(section, ...data) {
    const text = JSON.stringify(data);
    if (drawn.get(section) === text) return false;
    drawn.set(section, text);
    return true;
  }

  function renderState(force) {
    if (!state) return;
    if (force) drawn.clear();
    $("version").textContent = state.version ? "v" + state.version : "";
    if (changed("summary", state.totals, state.tools, state.memory, state.backends, state.litellm, state.memory_chain, state.series.requests)) renderSummary();
    if (changed("tools", state.tools, state.config && state.config.custom_header)) renderTools();
    if (changed("memory", state.memory, state.memory_chain)) renderMemory();
    if (changed("chart", state.series, state.started_at)) renderChart();
    if (changed("backends", state.backends, state.litellm)) renderBackends();
    if (changed("config", state.config)) renderConfig();
  }

  function renderSummary() {
    const s = state;
    const chain = s.memory_chain || { memory_id_forwarding: "unknown", notes: [] };
    const f = chain.memory_id_forwarding;
    const kind = f === "on" ? "ok" : f === "off" ? "bad" : f === "partial" ? "warn" : "";
    const b = $("s-memory-value");
    b.className = "badge " + kind;
    b.textContent = f;
    const ids = s.memory.length;
    const working = s.memory.filter((m) => m.last_state === "used").length;
    $("s-memory-sub").textContent = ids
      ? working + " of " + ids + (ids === 1 ? " id" : " ids") + " using memory now"
      : chain.notes && chain.notes[0]
        ? chain.notes[0]
        : f === "unknown"
          ? "not checked; see memory health below"
          : "";
    $("s-memory-sub").title = (chain.notes || []).join("\n");

    const products = new Set(s.tools.filter((t) => t.user_id !== null).map((t) => t.product));
    const memIds = new Set(s.tools.filter((t) => t.user_id !== null).map((t) => t.user_id));
    $("s-tools").textContent = String(products.size);
    $("s-tools-sub").textContent = plural(memIds.size, "memory id");

    const inWindow = s.series.requests.reduce((a, b) => a + b, 0);
    $("s-requests").textContent = count(s.totals.requests);
    $("s-requests-sub").textContent = plural(s.totals.errors, "error") + " · " + count(inWindow) + " in 15 min";
    $("s-tokens").textContent = count(s.totals.input_tokens) + " / " + count(s.totals.output_tokens);
    $("s-tokens-sub").textContent = "since " + when(s.started_at);

    const up = s.backends.filter((x) => x.status === "up").length;
    const be = $("s-backends");
    be.className = "badge " + (s.backends.length === 0 ? "" : up === s.backends.length ? "ok" : up === 0 ? "bad" : "warn");
    be.textContent = s.backends.length ? up + " of " + s.backends.length + " up" : "–";
    const l = s.litellm;
    $("s-backends-sub").textContent = l ? "LiteLLM " + l.state + " · " + plural(l.restarts, "restart") : "LiteLLM not supervised here";
  }

  function toolKey(t) {
    return "tool\n" + t.product + "\n" + (t.user_id ?? "") + "\n" + (t.decided_by ?? "");
  }

  function renderTools() {
    const rows = [];
    for (const t of state.tools) {
      const lead = t.user_id === null ? "bad" : t.memory_last ? MEMORY[t.memory_last][1] : "";
      const name = el("td", "lead " + lead);
      name.append(el("span", "tool-name", t.tool || t.product));
      const sub = t.tool ? t.product + (t.version ? " " + t.version : "") : t.version;
      if (sub) name.append(el("span", "tool-sub", sub));
      if (t.user_agent) name.title = t.user_agent;
      const errors = td(count(t.errors), "num " + (t.errors ? "status-bad" : "zero"));
      const cells = [
        name,
        td(idBadge(t.user_id)),
        td(why(t.decided_by, t.rule, t.tool, t.last_error_code), "opt ellipsis"),
        td(memoryBadge(t.memory_last)),
        td(count(t.requests), "num"),
        errors,
        td(count(t.input_tokens), "num opt"),
        td(count(t.output_tokens), "num opt"),
        agoCell(t.last_seen, "opt2"),
      ];
      const memoryCounts = t.memory_used + t.memory_absent + t.memory_errors
        ? t.memory_used + " used · " + t.memory_absent + " without memory · " + t.memory_errors + " errors"
        : "no LLM call seen";
      rows.push(
        ...expandable(toolKey(t), cells, 9, [
          ["User-Agent", el("span", "mono", t.user_agent ?? "(none)")],
          ["Memory id", t.user_id ?? "none: refused before routing"],
          ["Why", why(t.decided_by, t.rule, t.tool, t.last_error_code) + (t.decided_by ? " (" + t.decided_by + ")" : "")],
          ["Memory", memoryCounts],
          ["Last status", String(t.last_status) + (t.last_error_code ? " · " + t.last_error_code : "")],
          ["Last model", t.last_model],
          ["First seen", when(t.first_seen)],
          ["Last seen", when(t.last_seen)],
        ]),
      );
    }
    fillBody("tools", rows);
  }

  function renderMemory() {
    const rows = state.memory.map((m) => {
      const tr = el("tr");
      const st = MEMORY[m.last_state] || ["–", ""];
      const stateCell = td(badge(st[0], st[1], m.last_error || st[2]), "note");
      if (m.last_error) {
        const note = el("span", "tool-sub", m.last_error);
        note.title = m.last_error;
        stateCell.append(note);
      }
      tr.append(
        td(idBadge(m.user_id)),
        stateCell,
        td(count(m.calls), "num"),
        td(count(m.used), "num opt2"),
        td(count(m.context_added), "num opt"),
        td(count(m.errors), "num " + (m.errors ? "status-bad" : "zero")),
        td(count(m.absent), "num " + (m.absent ? "status-warn" : "zero")),
      );
      return tr;
    });
    fillBody("memory", rows);
    const notes = $("chain-notes");
    const chain = state.memory_chain || { memory_id_forwarding: "unknown", notes: [] };
    const cls = chain.memory_id_forwarding === "off" ? "bad" : chain.memory_id_forwarding === "partial" ? "warn" : "";
    const problems = (chain.problems || []).map((p) => {
      const li = el("li", p.severity === "error" ? "bad" : "warn", p.message);
      if (p.fix) li.append(el("pre", "fix", p.fix));
      return li;
    });
    notes.replaceChildren(...problems, ...(chain.notes || []).map((n) => el("li", cls, n)));
  }

  function renderRecent(fresh) {
    const rows = [];
    const shown = showAllRecent ? recent : recent.slice(0, RECENT_SHOWN);
    shown.forEach((r, i) => {
      const tokens = r.input_tokens === null && r.output_tokens === null ? "–" : count(r.input_tokens ?? 0) + " / " + count(r.output_tokens ?? 0);
      const time = td(clock(r.at));
      time.title = when(r.at);
      const path = td(r.path, "ellipsis");
      path.title = r.path;
      const status = td(r.client_disconnected ? r.status + " · left" : r.status, "num " + (r.client_disconnected ? "status-warn" : statusClass(r.status)));
      const cells = [time, td(r.method, "opt2"), path, td(idBadge(r.user_id)), td(r.model ?? "–", "opt"), status, td(duration(r.duration_ms), "num"), td(tokens, "num opt")];
      const memory = r.memory
        ? (MEMORY[r.memory.state] || [r.memory.state])[0] + (r.memory.context_added ? ", context added" : "") + (r.memory.error ? " · " + r.memory.error : "")
        : "not an LLM call";
      const rowKey = "req\n" + r.id + "\n" + r.at;
      const made = expandable(rowKey, cells, 8, [
        ["Request id", el("span", "mono", r.id)],
        ["Tool", r.tool],
        ["User-Agent", el("span", "mono", r.user_agent ?? "(none)")],
        ["Why", why(r.decided_by, r.rule, r.tool, r.error_code)],
        ["Memory", memory],
        ["Time to first byte", duration(r.ttfb_ms)],
        ["Bytes in / out", (r.bytes_in === null ? "?" : count(r.bytes_in)) + " / " + count(r.bytes_out)],
        ["Error", r.error ? r.error + (r.error_code ? " (" + r.error_code + ")" : "") : r.error_code],
        ["Client", r.client_disconnected ? "left before the end" : null],
      ]);
      if (i < fresh) made[0].classList.add("new");
      rows.push(...made);
    });
    fillBody("recent", rows);
    $("recent-count").textContent = recent.length ? shown.length + " of the last " + recent.length + ", newest first" : "";
    const more = $("recent-more");
    more.hidden = recent.length <= RECENT_SHOWN;
    more.textContent = showAllRecent ? "Show the newest " + RECENT_SHOWN + " only" : "Show all " + recent.length;
  }

  function renderBackends() {
    const rows = state.backends.map((b) => {
      const tr = el("tr");
      tr.append(
        td(b.url, "mono"),
        td(badge(b.status, b.status === "up" ? "ok" : "bad")),
        td(count(b.in_flight), "num"),
        td(b.last_error ?? "–", "wrap " + (b.last_error ? "" : "zero")),
      );
      return tr;
    });
    $("backends").tBodies[0].replaceChildren(...rows);
    const l = state.litellm;
    const dl = $("litellm");
    if (!l) {
      dl.replaceChildren(...kv([["State", "not supervised by this memproxy"]]).childNodes);
      return;
    }
    const kind = l.state === "ready" ? "ok" : l.state === "starting" || l.state === "restarting" ? "warn" : "bad";
    dl.replaceChildren(
      ...kv([
        ["State", badge(l.state, kind)],
        ["PID", l.pid],
        ["Restarts", String(l.restarts)],
        ["Last exit code", l.last_exit_code],
        ["Error", l.error],
      ]).childNodes,
    );
  }

  function renderConfig() {
    const c = state.config;
    const dl = $("config");
    const problems = $("config-problems");
    if (!c) {
      dl.replaceChildren(...kv([["File", "not reported"]]).childNodes);
      problems.replaceChildren();
      return;
    }
    const r = c.last_reload;
    let reloadCell = "none since start";
    if (r) {
      reloadCell = el("span");
      reloadCell.append(badge(r.ok ? "reloaded" : "reload failed", r.ok ? "ok" : "bad"), " " + when(parseTime(r.at)));
    }
    dl.replaceChildren(
      ...kv([
        ["File", el("span", "mono", c.file)],
        ["Loaded", when(parseTime(c.loaded_at))],
        ["Last reload", reloadCell],
        ["Listening on", c.listen],
        ["Custom header", c.custom_header],
        ["Default id", c.default_user_id],
        ["Rules", c.rules === undefined ? undefined : String(c.rules)],
        ["Access keys", c.access_keys === undefined ? undefined : c.access_keys ? "required" : "none (loopback only)"],
      ]).childNodes,
    );
    problems.replaceChildren(...(r && !r.ok && r.problems ? r.problems : []).map((p) => el("li", "bad", p)));
  }

  /**
   * Requests per bucket as bars (errors over them), tokens in and out as lines: inline SVG, no library.
   * A memproxy started minutes ago is shown since its start (at least two minutes), not as an empty window.
   */
  function renderChart() {
    const s = state.series;
    const n = s.requests.length;
    const step = s.step_ms;
    // Drawn at the box's own width: one unit is one pixel, so the labels keep their size.
    const W = Math.max(300, Math.round($("chart").clientWidth) || 640);
    const H = 220;
    const left = 44;
    const right = 8;
    const plotW = W - left - right;
    const top1 = 18;
    const h1 = 70;
    const top2 = 118;
    const h2 = 70;
    const firstLive = Math.max(0, Math.min(n - 1, Math.floor((state.started_at - s.start) / step)));
    const from = Math.max(0, Math.min(firstLive, n - CHART_MIN_BUCKETS));
    const shown = n - from;
    const bw = plotW / shown;
    const x = (i) => left + (i - from) * bw;
    const req = s.requests.slice(from);
    const maxReq = niceMax(Math.max(...req));
    const maxTok = niceMax(Math.max(...s.input_tokens.slice(from), ...s.output_tokens.slice(from)));
    const spanMs = shown * step;
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "requests and tokens per " + step / 1000 + " s" });

    // Before memproxy started there is no data: shaded, not drawn as zero.
    if (firstLive > from) {
      const edge = x(firstLive);
      root.append(svg("rect", { class: "before", x: left, y: top1, width: edge - left, height: h1 }));
      root.append(svg("rect", { class: "before", x: left, y: top2, width: edge - left, height: h2 }));
      root.append(svg("line", { class: "start-line", x1: edge, x2: edge, y1: top1, y2: top2 + h2 }));
      root.append(svg("text", { x: edge - 4, y: top1 + 12, "text-anchor": "end" }, "started " + clock(state.started_at)));
    }
    for (const [top, h, max, title] of [
      [top1, h1, maxReq, "Requests per " + step / 1000 + " s"],
      [top2, h2, maxTok, "Tokens per " + step / 1000 + " s"],
    ]) {
      root.append(svg("text", { class: "title", x: left, y: top - 6 }, title));
      root.append(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: top, y2: top }));
      root.append(svg("line", { class: "grid-line", x1: left, x2: W - right, y1: top + h / 2, y2: top + h / 2 }));
      root.append(svg("line", { class: "axis", x1: left, x2: W - right, y1: top + h, y2: top + h }));
      root.append(svg("text", { x: left - 6, y: top + 3, "text-anchor": "end" }, count(max)));
      root.append(svg("text", { x: left - 6, y: top + h / 2 + 3, "text-anchor": "end" }, count(max / 2)));
      root.append(svg("text", { x: left - 6, y: top + h + 3, "text-anchor": "end" }, "0"));
    }
    const gap = Math.min(2, bw / 4);
    for (let i = from; i < n; i++) {
      for (const [value, cls] of [
        [s.requests[i], "bar-req"],
        [s.errors[i], "bar-err"],
      ]) {
        if (!(value > 0)) continue;
        const h = Math.max(1, (value / maxReq) * h1);
        root.append(svg("rect", { class: cls, x: x(i) + gap / 2, y: top1 + h1 - h, width: Math.max(1, bw - gap), height: h }));
      }
    }
    for (const [values, cls] of [
      [s.input_tokens, "in"],
      [s.output_tokens, "out"],
    ]) {
      const pts = [];
      for (let i = firstLive; i < n; i++) pts.push((x(i) + bw / 2).toFixed(1) + "," + (top2 + h2 - (values[i] / maxTok) * h2).toFixed(1));
      if (pts.length < 2) pts.unshift((x(firstLive) + 0.5).toFixed(1) + "," + (top2 + h2));
      const first = pts[0].split(",")[0];
      const last = (x(n - 1) + bw / 2).toFixed(1);
      root.append(svg("polygon", { class: "area-" + cls, points: first + "," + (top2 + h2) + " " + pts.join(" ") + " " + last + "," + (top2 + h2) }));
      root.append(svg("polyline", { class: "line-" + cls, points: pts.join(" ") }));
    }
    // Time axis: how long before now, at 4 ticks at most.
    const tick = [30_000, 60_000, 120_000, 300_000, 600_000].find((t) => spanMs / t <= 4) ?? 600_000;
    for (let t = 0; t <= spanMs + 1; t += tick) {
      const px = left + plotW - (t / spanMs) * plotW;
      const label = t === 0 ? "now" : t < 60_000 ? "−" + t / 1000 + " s" : "−" + t / 60_000 + " min";
      root.append(svg("text", { x: px, y: H - 8, "text-anchor": t === 0 ? "end" : px - left < 20 ? "start" : "middle" }, label));
    }
    // Hover: one transparent column per bucket with its numbers.
    for (let i = firstLive; i < n; i++) {
      const t = svg("rect", { x: x(i), y: top1, width: bw, height: top2 + h2 - top1, fill: "transparent" });
      const text = clock(s.start + i * step) + ": " + s.requests[i] + " requests, " + s.errors[i] + " errors, " +
        count(s.input_tokens[i]) + " tokens in, " + count(s.output_tokens[i]) + " out";
      t.append(svg("title", {}, text));
      root.append(t);
    }
    $("chart").replaceChildren(root);
    const minutes = Math.round(spanMs / 60_000);
    $("chart-range").textContent = "last " + minutes + " minutes, per " + step / 1000 + " s";
  }

  /** The smallest 1, 2 or 5 times a power of ten at or above v (at least 1). */
  function niceMax(v) {
    if (!(v > 1)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const f of [1, 2, 5, 10]) if (f * p >= v) return f * p;
    return 10 * p;
  }

  // ---- the rule tester

  async function explain(e) {
    e.preventDefault();
    const box = $("tester-result");
    let res;
    try {
      res = await fetch("/ui/api/explain", {
        method: "POST",
        headers: authHeaders({ "content-type": "application/json" }),
        body: JSON.stringify({ headers: $("tester-headers").value }),
        cache: "no-store",
      });
    } catch {
      showResult(box, false, [badge("error", "bad"), el("span", "", "memproxy cannot be reached")], null);
      return;
    }
    if (res.status === 401) {
      forgetKey();
      showLogin("Your key is no longer accepted.");
      return;
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok) {
      const message = (body && body.error && body.error.message) || "memproxy answered " + res.status;
      showResult(box, false, [badge("cannot read", "bad"), el("span", "", message)], body);
      return;
    }
    const refusal = body && (body.rejection || (body.ok === false ? body : null));
    if (refusal) {
      const status = refusal.status ? " " + refusal.status : "";
      showResult(box, false, [badge("refused" + status, "bad"), el("span", "", refusal.message || "the request would be refused")], body);
      return;
    }
    const d = (body && body.decision) || body || {};
    const rule = d.rule || (d.matched_pattern ? d.matched_pattern.header + ": " + d.matched_pattern.pattern : null);
    let reason;
    if (d.decided_by === "derived" && d.derived_from) reason = "derived from the User-Agent product " + d.derived_from;
    else if (d.decided_by) reason = why(d.decided_by, rule, d.tool, null);
    else if (d.custom_header_present) reason = why("custom_header");
    else if (rule) reason = why("rule", rule);
    else reason = why("default");
    showResult(box, true, [el("span", "", "Memory id"), badge(d.user_id ?? "?", "id"), el("span", "muted", "because: " + reason)], body);
  }

  function showResult(box, ok, verdict, body) {
    const line = el("div", "verdict");
    line.append(...verdict);
    box.replaceChildren(line);
    if (body !== null) {
      const details = el("details");
      details.append(el("summary", "", "Full answer"), el("pre", "", JSON.stringify(body, null, 2)));
      box.append(details);
    }
    box.classList.toggle("refused", !ok);
    box.hidden = false;
  }

  // ---- start

  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const value = $("key").value.trim();
    if (!value) return;
    key = value;
    sessionStorage.setItem(KEY_STORAGE, value);
    $("key").value = "";
    $("login-error").textContent = "";
    connect();
  });
  $("logout").addEventListener("click", () => {
    forgetKey();
    showLogin("Signed out.");
  });
  $("tester").addEventListener("submit", explain);
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      drawn.delete("chart");
      renderState();
    }, 150);
  });
  $("recent-more").addEventListener("click", () => {
    showAllRecent = !showAllRecent;
    renderRecent(0);
  });
  $("tester-headers").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("tester").requestSubmit();
  });
  setInterval(() => {
    for (const c of document.querySelectorAll("td.ago")) c.textContent = ago(Number(c.dataset.at));
    if (conn && Date.now() - lastData > SILENCE_MS && $("live").dataset.state === "live") {
      conn.abort();
      retry("no news from memproxy");
    }
  }, 1000);
  connect();
})();
