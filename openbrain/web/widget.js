/* OpenBrain chat widget (docs/widget.md). One plain script, no framework, no build step:
 *   <script src="https://API/widget.js" data-key="obw.CLIENT.SECRET" data-profile="default" defer></script>
 * A launcher and a chat panel in an open shadow root; styles are a constructable stylesheet (no inline style
 * or script, no eval, model text only ever as textContent), so it runs under `script-src 'self'; style-src 'self'`.
 * Replies stream over the API's WebSocket protocol (docs/api.md, Streaming turns) and fall back to POST /chat;
 * scheduled messages arrive over the same socket, kept open between turns. */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || window.OpenBrain) return;
  const data = script.dataset;
  const KEY = data.key || "";
  const PROFILE = data.profile || "default";
  const CLIENT = KEY.split(".")[1] || "";
  const TITLE = data.title || "Chat";
  // The API is where the script came from (its stage path kept: .../Prod/widget.js), unless data-api says.
  const API = (data.api || script.src.replace(/\/widget(?:\/[0-9a-f]+)?\.js(?:[?#].*)?$/, "")).replace(/\/+$/, "");
  const WS = data.ws || API.replace(/^http/, "ws") + "/ws";
  const STORE = "openbrain:" + CLIENT + ":" + PROFILE;
  const TOOL_NOTES = { capture_lead: "Saving your details…" };
  const TURN_SECONDS = 45; // the server ends a turn within 29 s
  const MAYBE_STORED = ["offline", "gateway_error", "timeout"]; // a turn lost on the way, not refused
  const SIGN_IN = "Please sign in to chat.";

  // :host's `all:initial!important` (the page's CSS cannot reach in) also wins over its own font and colour unless
  // they are !important too.
  const CSS = `
:host{all:initial!important;position:fixed!important;z-index:2147483000!important;bottom:20px!important;
right:20px!important;left:auto!important;top:auto!important;display:block!important;
--a:var(--openbrain-accent,#1d4ed8);--on-a:var(--openbrain-on-accent,#fff);--bg:var(--openbrain-background,#fff);
--fg:var(--openbrain-text,#1f2937);--muted:var(--openbrain-muted,#4b5563);--bot:var(--openbrain-bubble,#eef2f7);
--radius:var(--openbrain-radius,14px);--font:var(--openbrain-font,system-ui,-apple-system,"Segoe UI",Roboto,sans-serif);
font:15px/1.45 var(--font)!important;color:var(--fg)!important}
:host([data-position=left]){left:20px!important;right:auto!important}
*{box-sizing:border-box;font:inherit;color:inherit;margin:0}
[hidden]{display:none!important}
button{cursor:pointer;border:0;background:none;padding:0}
:focus-visible{outline:3px solid var(--a);outline-offset:2px}
.launcher{width:56px;height:56px;border-radius:50%;background:var(--a);color:var(--on-a);display:grid;
place-items:center;box-shadow:0 4px 14px rgba(0,0,0,.25);transition:transform .15s}
.launcher:hover{transform:scale(1.06)}
.launcher svg{width:26px;height:26px;fill:currentColor}
.panel{position:absolute;bottom:72px;right:0;width:min(380px,calc(100vw - 40px));height:min(560px,calc(100vh - 120px));
display:flex;flex-direction:column;background:var(--bg);border-radius:var(--radius);overflow:hidden;
box-shadow:0 10px 40px rgba(0,0,0,.28);animation:pop .18s ease-out}
:host([data-position=left]) .panel{right:auto;left:0}
@keyframes pop{from{opacity:0;transform:translateY(8px)}}
header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:var(--a);color:var(--on-a)}
header img{width:32px;height:32px;border-radius:50%;object-fit:cover}
h2{flex:1;font-weight:600;font-size:16px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
header button{color:var(--on-a);padding:4px 8px;border-radius:8px;font-size:13px}
header button:hover{background:rgba(255,255,255,.16)}
header :focus-visible{outline-color:var(--on-a)}
.close{font-size:20px;line-height:1}
.log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:8px}
.msg{max-width:85%;padding:8px 12px;border-radius:12px;overflow-wrap:anywhere}
.msg[data-role=user]{align-self:flex-end;background:var(--a);color:var(--on-a)}
.msg[data-role=assistant]{align-self:flex-start;background:var(--bot);color:var(--fg)}
.msg[data-role=user] a{color:var(--on-a)}
.msg a{color:var(--a);text-decoration:underline}
.msg p+p,.msg p+ul,.msg p+ol,.msg ul+p,.msg ol+p,.msg pre{margin-top:6px}
.msg ul,.msg ol{padding-left:20px}
.msg code{font-family:ui-monospace,monospace;font-size:.9em;background:rgba(0,0,0,.07);padding:0 3px;border-radius:4px}
.msg pre{white-space:pre-wrap;background:rgba(0,0,0,.07);padding:6px;border-radius:6px}
.msg pre code{background:none;padding:0}
.note{align-self:flex-start;font-size:13px;color:var(--muted);font-style:italic}
.typing{align-self:flex-start;display:flex;gap:4px;padding:12px;background:var(--bot);border-radius:12px}
.typing i{width:7px;height:7px;border-radius:50%;background:var(--muted);animation:blink 1.2s infinite both}
.typing i:nth-child(2){animation-delay:.2s}.typing i:nth-child(3){animation-delay:.4s}
@keyframes blink{50%{opacity:.25}}
.status{padding:6px 12px;font-size:13px;color:var(--fg);background:#fef3c7;border-top:1px solid #f59e0b}
.status:empty{padding:0;border:0}
form{display:flex;gap:8px;padding:10px;border-top:1px solid #d1d5db}
textarea{flex:1;resize:none;height:44px;max-height:120px;padding:10px;border:1px solid #6b7280;border-radius:10px;
background:var(--bg);color:var(--fg)}
textarea:disabled{background:#f3f4f6}
.send{background:var(--a);color:var(--on-a);padding:0 16px;border-radius:10px;font-weight:600}
.send:disabled{opacity:.55;cursor:default}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (prefers-reduced-motion:reduce){*{animation:none!important;transition:none!important}}`;

  // ---------------------------------------------------------------------------------------------- DOM
  const el = (tag, props, ...children) => {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props || {})) {
      if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value === true) node.setAttribute(name, "");
      else if (value !== false && value != null) node.setAttribute(name, value);
    }
    node.append(...children);
    return node;
  };
  const icon = () => {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-5 4V5a2 2 0 0 1 1-2z");
    svg.append(path);
    return svg;
  };

  const host = el("openbrain-widget", { "data-position": data.position === "left" ? "left" : "right" });
  if (data.color) host.style.setProperty("--openbrain-accent", data.color); // CSSOM: allowed by a strict CSP
  const root = host.attachShadow({ mode: "open" });
  const sheet = new CSSStyleSheet();
  sheet.replaceSync(CSS);
  root.adoptedStyleSheets = [sheet];

  const launcher = el("button", { class: "launcher", type: "button", "aria-label": "Open chat",
    "aria-expanded": "false", "aria-controls": "ob-panel", onclick: () => (panel.hidden ? open() : close()) }, icon());
  // focusable: a scrolling region must be reachable by keyboard (axe: scrollable-region-focusable)
  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" });
  const status = el("div", { class: "status", role: "status" });
  const input = el("textarea", { id: "ob-input", rows: "1", placeholder: "Type a message…" });
  const sendButton = el("button", { class: "send", type: "submit", text: "Send" });
  const newButton = el("button", { type: "button", text: "New conversation", onclick: () => reset() });
  const avatar = /^https?:/.test(data.avatar || "") ? el("img", { src: data.avatar, alt: "" }) : "";
  const panel = el("div", { id: "ob-panel", class: "panel", role: "dialog", "aria-labelledby": "ob-title",
    hidden: true, onkeydown: (e) => e.key === "Escape" && (e.preventDefault(), close()) },
  el("header", {}, avatar, el("h2", { id: "ob-title", text: TITLE }),
    newButton,
    el("button", { type: "button", class: "close", "aria-label": "Close chat", text: "×", onclick: () => close() })),
  log, status,
  el("form", { onsubmit: (e) => { e.preventDefault(); submit(); } },
    el("label", { class: "sr", for: "ob-input", text: "Message" }), input, sendButton));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  root.append(launcher, panel);

  // ------------------------------------------------------------------------------------- safe Markdown
  // A small renderer that only ever makes elements and text nodes: no HTML is parsed, no image is loaded.
  const INLINE = /`([^`\n]+)`|\*\*([^*\n]+)\*\*|__([^_\n]+)__|\*([^*\s][^*\n]*)\*|\b_([^_\n]+)_\b|!?\[([^\]\n]+)\]\(([^)\s]+)\)|((?:https?:\/\/|mailto:)[^\s<>()]+[^\s<>().,;:!?'"])/g;
  const safeHref = (href) => {
    try {
      const url = new URL(href, "https://invalid.invalid/");
      return ["http:", "https:", "mailto:"].includes(url.protocol) && /^(https?:|mailto:)/i.test(href) ? url.href : null;
    } catch (e) {
      return null;
    }
  };
  const link = (text, href) => {
    const safe = safeHref(href);
    return safe ? el("a", { href: safe, target: "_blank", rel: "noopener noreferrer", text }) : document.createTextNode(text);
  };
  const inline = (text) => {
    const out = [];
    let last = 0;
    for (const m of text.matchAll(INLINE)) {
      if (m.index > last) out.push(document.createTextNode(text.slice(last, m.index)));
      if (m[1] != null) out.push(el("code", { text: m[1] }));
      else if (m[2] != null || m[3] != null) out.push(el("strong", {}, ...inline(m[2] ?? m[3])));
      else if (m[4] != null || m[5] != null) out.push(el("em", {}, ...inline(m[4] ?? m[5])));
      else if (m[6] != null) out.push(link(m[6], m[7]));
      else out.push(link(m[8], m[8]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(document.createTextNode(text.slice(last)));
    return out;
  };
  const markdown = (source) => {
    const blocks = [];
    const lines = source.replace(/\r\n?/g, "\n").split("\n");
    let para = [];
    let list = null;
    const flush = () => {
      if (para.length) blocks.push(el("p", {}, ...inline(para.join("\n"))));
      para = [];
      list = null;
    };
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i];
      const item = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/.exec(line);
      if (/^\s*```/.test(line)) {
        flush();
        const code = [];
        while (++i < lines.length && !/^\s*```/.test(lines[i])) code.push(lines[i]);
        blocks.push(el("pre", {}, el("code", { text: code.join("\n") })));
      } else if (!line.trim()) {
        flush();
      } else if (item) {
        if (para.length) flush();
        const tag = item[1] ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== tag) blocks.push((list = el(tag)));
        list.append(el("li", {}, ...inline(item[3])));
      } else if (list && /^\s+\S/.test(line)) {
        list.lastChild.append(" ", ...inline(line.trim()));
      } else {
        list = null;
        para.push(line.replace(/^#{1,6}\s+/, ""));
      }
    }
    flush();
    return blocks;
  };

  // ---------------------------------------------------------------------------------------------- state
  const listeners = { message: [], lead: [], error: [] };
  const emit = (name, detail) => {
    for (const fn of listeners[name]) {
      try {
        fn(detail);
      } catch (e) {
        setTimeout(() => { throw e; }); // the page's bug: reported, and the widget goes on
      }
    }
  };
  let sessionId = null;
  try {
    sessionId = localStorage.getItem(STORE);
  } catch (e) { /* storage blocked: the conversation lasts as long as the page */ }
  const remember = (id) => {
    sessionId = id;
    try {
      if (id) localStorage.setItem(STORE, id);
      else localStorage.removeItem(STORE);
    } catch (e) { /* as above */ }
  };
  let identity = {};
  let started = false;
  let busy = false;
  let ended = false;
  let unverified = false; // refused as `unauthorized` (no identity, a wrong one, an expired token): until identify()
  let limitedUntil = 0;
  let limitTimer = 0;
  let queue = Promise.resolve();

  const controls = () => {
    if (ended && root.activeElement === input) newButton.focus(); // not lost to the page with the input
    input.disabled = ended;
    sendButton.disabled = busy || ended || unverified || !navigator.onLine || Date.now() < limitedUntil;
    log.setAttribute("aria-busy", String(busy)); // a reply is read out once whole, not token by token
  };
  const setState = (state, text) => {
    host.dataset.state = state;
    status.textContent = text || "";
    controls();
  };
  const idle = () => {
    if (ended) setState("ended", "This conversation has ended. Start a new conversation to chat again.");
    else if (!navigator.onLine) setState("offline", "You are offline. Reconnect to keep chatting.");
    else if (unverified) setState("unauthorized", SIGN_IN);
    else if (Date.now() < limitedUntil) rateLimited();
    else setState(busy ? "busy" : "ready", "");
  };
  const rateLimited = (seconds) => {
    if (seconds != null) limitedUntil = Date.now() + Math.max(1, Number(seconds) || 1) * 1000;
    clearTimeout(limitTimer);
    const left = Math.ceil((limitedUntil - Date.now()) / 1000);
    if (left <= 0) return idle();
    setState("rate-limited", "Too many messages: try again in " + left + " s");
    limitTimer = setTimeout(idle, 1000);
  };
  const fail = (code, message, retryAfter) => {
    if (code === "rate_limited") rateLimited(retryAfter);
    else if (code === "unauthorized") {
      unverified = true;
      idle();
    } else if (code === "offline") setState("offline", "Can't reach the chat service. Check your connection and try again.");
    else if (code === "not_found" && sessionId) {
      remember(null);
      ended = true;
      idle();
    } else setState("error", "Something went wrong: " + (message || "please try again"));
    emit("error", { code, message, retryAfter }); // last: a listener may act on it at once (identify anew)
  };
  addEventListener("online", idle);
  addEventListener("offline", idle);

  const crashed = (e) => { // our bug: reported, and the queue goes on with the next turn
    setState("error", "Something went wrong: please try again");
    setTimeout(() => { throw e; });
  };
  const scroll = () => { log.scrollTop = log.scrollHeight; };
  const bubble = (role, text) => {
    const node = el("div", { class: "msg", "data-role": role });
    if (role === "user") node.textContent = text;
    else node.append(...markdown(text));
    log.append(node);
    scroll();
    return node;
  };
  const pushed = (frame) => { // a scheduled message, outside any turn: shown if it is of this conversation
    if (frame.session_id !== sessionId || frame.role !== "assistant") return;
    bubble("assistant", frame.text);
    emit("message", { role: "assistant", text: frame.text, sessionId, scheduled: true });
  };

  // ----------------------------------------------------------------------------------------- transports
  const headers = () => {
    const h = { "x-api-key": KEY };
    if (identity.token) h["X-Widget-Token"] = identity.token;
    else if (identity.userId) Object.assign(h, { "X-User-Id": identity.userId, "X-User-Hash": identity.userHash });
    return h;
  };
  let socket = null; // a Promise of an acknowledged WebSocket, or of null (then HTTP)
  let onFrame = null;
  const connect = () => {
    if (typeof WebSocket !== "function") return Promise.resolve(null);
    const opened = new Promise((resolve) => {
      let ws;
      try {
        ws = new WebSocket(WS, ["openbrain", KEY]);
      } catch (e) {
        return resolve(null);
      }
      let acked = false;
      ws.onopen = () => ws.send(JSON.stringify({ action: "ack", ...identity }));
      ws.onmessage = (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch (e) {
          return;
        }
        if (!acked) {
          acked = frame.type === "ack";
          if (frame.type === "error") { // a refused ack (an identity that does not verify): shown, not sent over
            resolve({ refusal: frame }); // HTTP, which would refuse it too; the next turn connects again
            if (socket === opened) socket = null;
          } else resolve(acked ? ws : null);
          if (!acked) ws.close();
        } else if (frame.scheduled) pushed(frame);
        else if (onFrame) {
          // API Gateway's own frame when the function failed or took over 29 s: {"message": "...", "requestId"}
          // (the turn may or may not have been stored: its message stays in the conversation, as when offline)
          onFrame(frame.type ? frame : { type: "error", code: "gateway_error", message: frame.message });
        }
      };
      ws.onclose = () => {
        if (!acked) return resolve(null); // unreachable, or the upgrade refused: HTTP from now on
        if (socket === opened) socket = null; // closed later (idle, a new identity): the next turn reconnects
        if (onFrame) onFrame({ type: "error", code: "offline", message: "the connection closed" });
      };
    });
    return opened;
  };

  // Sends `message` and hands each frame that answers it to `take` until `take` returns true (or TURN_SECONDS
  // pass: `take` gets a timeout error); the queue runs one exchange at a time, so no frame reaches another's.
  const exchange = (ws, message, take) => new Promise((resolve) => {
    const done = () => { clearTimeout(timer); onFrame = null; resolve(); };
    const timer = setTimeout(() => { take({ type: "error", code: "timeout", message: "no answer in time" }); done(); },
      TURN_SECONDS * 1000);
    onFrame = (frame) => take(frame) && done();
    ws.send(JSON.stringify(message));
  });

  // One turn: the user's message (or a reset), its events shown as they come. Resolves when it ends.
  const turn = async (body, asked) => {
    let refused = false;
    const view = { node: null, note: null, typing: el("div", { class: "typing", "aria-hidden": "true" },
      el("i"), el("i"), el("i")), step: 0, text: "" };
    log.append(view.typing);
    scroll();
    const show = (text) => {
      if (!view.node) view.node = bubble("assistant", "");
      view.typing.remove();
      view.node.replaceChildren(...markdown(text));
      scroll();
    };
    const handle = (frame) => {
      switch (frame.type) {
        case "turn.started":
          if (frame.session_id) remember(frame.session_id);
          break;
        case "token":
          if (frame.step !== view.step) view.text = "";
          view.step = frame.step;
          view.text += frame.text;
          show(view.text);
          break;
        case "tool.started":
          if (view.note) view.note.remove();
          view.note = el("div", { class: "note", text: TOOL_NOTES[frame.name] || "Working…" });
          log.insertBefore(view.note, view.typing.parentNode ? view.typing : null);
          scroll();
          break;
        case "message":
          show(frame.text);
          emit("message", { role: "assistant", text: frame.text, sessionId });
          break;
        case "turn.finished":
          finished(frame);
          return true;
        case "error":
          refused = !MAYBE_STORED.includes(frame.code); // a refused turn stored nothing (docs/api.md)
          fail(frame.code, frame.message, frame.retry_after);
          return true;
      }
      return false;
    };
    const finished = (reply) => {
      if (reply.session_id) remember(reply.session_id);
      for (const event of reply.events || []) {
        if (String(event.type).startsWith("lead.")) emit("lead", { type: event.type, leadId: event.object_id, sessionId });
      }
      if (reply.ended) ended = true;
    };
    busy = true;
    idle();
    try {
      if (!socket) socket = connect();
      const ws = await socket;
      if (ws && ws.refusal) {
        refused = true;
        fail(ws.refusal.code, ws.refusal.message, ws.refusal.retry_after);
      } else if (ws) {
        await exchange(ws, { action: "chat", ...body }, handle);
      } else {
        let response;
        try {
          response = await fetch(API + "/chat", { method: "POST", headers: { ...headers(), "Content-Type": "application/json" },
            body: JSON.stringify(body) });
        } catch (e) {
          return fail("offline", "the chat service cannot be reached");
        }
        const reply = await response.json().catch(() => ({}));
        if (!response.ok) {
          const error = reply.error || {};
          refused = true;
          return fail(error.code || "error", error.message, response.headers.get("Retry-After"));
        }
        remember(reply.session_id);
        handle({ type: "message", text: reply.message });
        finished(reply);
      }
    } finally {
      if (refused && asked) { // the message is not in the conversation: back into the composer, to send again
        asked.remove();
        if (!input.value) input.value = body.message;
      }
      view.typing.remove();
      if (view.note) view.note.remove();
      busy = false;
      if (host.dataset.state === "busy") idle();
      else controls(); // the state the turn ended in (an error, rate-limited, offline) stays on show
    }
  };
  // the session as it is when the turn starts (an icebreaker queued before may have started it)
  // A new session learns the visitor's time zone: scheduled messages ("dps ...", reminders) are read in it.
  const inZone = () => { try { return { context: { timezone: Intl.DateTimeFormat().resolvedOptions().timeZone } }; } catch (e) { return {}; } };
  const chat = (body, asked) => turn({ agentConfig: PROFILE, ...(sessionId && !body.reset ? { sessionId } : inZone()), ...body }, asked);
  const enqueue = (body, asked) => (queue = queue.then(() => chat(body, asked)).catch(crashed)); // one at a time

  // The stored conversation shown again; false when there is none to show (then the visitor is greeted).
  const restore = async () => {
    if (!sessionId) return false;
    let response;
    try {
      response = await fetch(API + "/sessions/" + encodeURIComponent(sessionId), { headers: headers() });
    } catch (e) {
      response = null;
    }
    if (response && (response.status === 404 || response.status === 422)) {
      remember(null); // expired, not this visitor's, or not a session id at all: start over
      return false;
    }
    const session = response && (await response.json().catch(() => ({})));
    if (!response || !response.ok) { // shown, and tried again at the next open
      started = false;
      if (response) fail(session.error?.code || "error", session.error?.message, response.headers.get("Retry-After"));
      else fail("offline");
      return true;
    }
    // a scheduled prompt to the chatbot is stored as a user message, but the visitor never wrote it
    const shown = session.messages.filter((m) => m.content && (m.role === "user" ? !m.scheduled : m.role === "assistant"));
    for (const m of shown) bubble(m.role, m.content);
    ended = !!session.ended;
    idle();
    return shown.length > 0;
  };
  // The socket of a stored conversation, opened and told of its session, so scheduled messages arrive. Its
  // answer is awaited (an error one too: the session expired meanwhile), else it would reach the next turn and
  // end it; nothing is sent when the visitor started a new conversation while the socket opened.
  const listen = async () => {
    const id = sessionId;
    if (!id) return;
    const ws = await (socket = socket || connect());
    if (!ws || ws.refusal || id !== sessionId) return;
    await exchange(ws, { action: "session", sessionId: id }, (frame) => frame.type === "session" || frame.type === "error");
  };
  const greet = () => {
    if (data.greeting) {
      bubble("assistant", data.greeting);
      return Promise.resolve();
    }
    return chat({ reset: true }); // runs in the queue already
  };

  // ---------------------------------------------------------------------------------------------- API
  const show = () => {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    (input.disabled ? newButton : input).focus();
  };
  function open() {
    show();
    if (!started) {
      started = true;
      queue = queue.then(restore).then((resumed) => (resumed ? listen() : greet())).catch(crashed);
    } else if (!socket) queue = queue.then(listen).catch(crashed); // closed meanwhile (idle): opened again
    return queue;
  }
  function close() {
    if (panel.hidden) return;
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  function send(text) {
    text = String(text == null ? "" : text).trim();
    if (!text || ended) return queue;
    if (panel.hidden) open();
    const asked = bubble("user", text);
    emit("message", { role: "user", text, sessionId });
    return enqueue({ message: text }, asked);
  }
  function submit() {
    if (sendButton.disabled || !input.value.trim()) return;
    const text = input.value;
    input.value = "";
    send(text);
  }
  const restart = (first) => { // the conversation shown afresh from `first` (run in the queue)
    ended = false;
    log.replaceChildren();
    idle();
    started = true;
    show(); // not open(): its socket for the old conversation would name a session the new one may not be
    return (queue = queue.then(first).catch(crashed));
  };
  function reset() {
    remember(null);
    return restart(greet);
  }
  function resume(id) { // a session of this profile the client's server listed for the user (GET /sessions?userId=)
    remember(String(id));
    return restart(() => restore().then((resumed) => (resumed ? listen() : greet())));
  }
  function identify(who) {
    identity = who && who.token ? { token: String(who.token) }
      : who && who.userId ? { userId: String(who.userId), userHash: String(who.userHash || "") } : {};
    if (socket) {
      const old = socket;
      socket = null;
      old.then((ws) => ws && ws.close()); // the next turn acknowledges with the new identity
    }
    if (unverified) {
      unverified = false;
      idle();
      // nothing shown yet (the greeting or the transcript was refused): the next open, or this one, starts again
      if (!log.querySelector(".msg")) started = false;
      if (!started && !panel.hidden) open();
    }
  }
  function on(name, fn) {
    if (!listeners[name] || typeof fn !== "function") throw new TypeError("OpenBrain.on: message, lead or error");
    listeners[name].push(fn);
    return () => { listeners[name] = listeners[name].filter((f) => f !== fn); };
  }
  window.OpenBrain = Object.freeze({ open, close, send, identify, reset, resume, on });
  if (data.token || data.userId) identify({ token: data.token, userId: data.userId, userHash: data.userHash });

  const mount = () => {
    document.body.append(host);
    idle();
  };
  if (document.body) mount();
  else addEventListener("DOMContentLoaded", mount);
})();
