/* Clinic chat widget: <script src=".../widget.js"> plus window.ClinicChat = {...}.
 * Talks to Rasa's socket.io channel (bot/channels/socketio.py) via the vendored
 * socket.io-client; no other requests. Message text is only ever set as text nodes,
 * never as HTML, so a bot reply cannot inject markup.
 * Shared devices: one conversation per tab (sessionStorage only, nothing in localStorage),
 * ended after `sessionIdleMinutes` (30) without activity, and "Start over" (after a
 * confirmation) ends it in Rasa too (`session_restart`: slots and personal details
 * cleared), so the next person at the computer never sees or continues it. */
(() => {
  "use strict";
  if (window.__clinicChat) return;
  window.__clinicChat = true;

  const script = document.currentScript;
  const base = (script && script.src) || location.href;
  const cfg = window.ClinicChat || {};
  const colours = cfg.colours || cfg.colors || {};
  const serverUrl = cfg.serverUrl || new URL(base).origin;
  const opt = {
    title: cfg.title || "Clinic assistant",
    subtitle: cfg.subtitle || "Answers about the clinic, any time",
    greeting: cfg.initialGreeting || "",
    initPayload: cfg.initPayload || "",
    disclaimer: cfg.disclaimer || "Automated assistant \u2014 general information, not medical " +
      `advice. In an emergency call ${cfg.emergencyNumber || "your local emergency number"} or go to the nearest A&E.`,
    path: cfg.socketPath || "/socket.io/",
    idleMs: (cfg.sessionIdleMinutes || 30) * 60e3,
    keep: 100
  };
  const KEY = "clinicChat:" + serverUrl;
  const SAFE_SCHEMES = ["http:", "https:", "mailto:", "tel:"];

  // ---- storage: this tab's conversation in sessionStorage, ended after inactivity ----
  try { localStorage.removeItem(KEY); } catch (e) { /* older versions kept the id there */ }
  const load = () => {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || {}; } catch (e) { return {}; }
  };
  let view = load();
  let ident = view;     // the session id lives with the view: one conversation per tab
  let toEnd = null;     // a conversation to end in Rasa once connected (expired on load)
  const idle = () => !!view.at && Date.now() - view.at > opt.idleMs;
  if (idle()) { toEnd = view.sessionId || null; view = ident = {}; }
  view.history = view.history || [];
  view.queue = view.queue || [];
  const save = (touch) => {
    if (touch !== false) view.at = Date.now();
    view.history = view.history.slice(-opt.keep);
    try { sessionStorage.setItem(KEY, JSON.stringify(view)); } catch (e) { /* private mode */ }
  };

  // ---- DOM: attributes and text only ----
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const k in attrs || {}) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  };
  const icon = (d) => {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    path.setAttribute("d", d);
    svg.append(path);
    return svg;
  };
  const srOnly = (text) => el("span", { class: "cc-sr" }, text);

  const host = el("div", { id: "clinic-chat" });
  for (const [k, prop] of [["primary", "--cc-primary"], ["primaryDark", "--cc-primary-dark"],
    ["accent", "--cc-accent"], ["background", "--cc-bg"], ["text", "--cc-text"]]) {
    if (colours[k]) host.style.setProperty(prop, colours[k]);
  }
  const root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  const wrap = el("div", { class: "cc" });
  const css = el("link", { rel: "stylesheet", href: new URL("widget.css", base).href });
  wrap.style.visibility = "hidden";  // until the stylesheet is in: nothing flashes unstyled
  css.onload = css.onerror = () => { wrap.style.visibility = ""; };
  root.append(css, wrap);

  const launcher = el("button", {
    type: "button", class: "cc-launcher", "aria-expanded": "false", "aria-controls": "cc-panel",
    "aria-label": "Open chat: " + opt.title
  });
  const badge = el("span", { class: "cc-badge", hidden: "" });
  badge.append(srOnly("New message"));
  launcher.append(icon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"),
    icon("M6 9l6 6 6-6"), el("span", { class: "cc-launcher-text", "aria-hidden": "true" },
      "Questions? Chat with us"), badge);

  const panel = el("section", {
    id: "cc-panel", class: "cc-panel", role: "dialog", "aria-labelledby": "cc-title",
    "aria-describedby": "cc-disclaimer", hidden: ""
  });
  const header = el("header", { class: "cc-header" });
  const heading = el("div", { class: "cc-heading" });
  const status = el("p", { class: "cc-status", role: "status" }, opt.subtitle);
  heading.append(el("h2", { id: "cc-title", class: "cc-title" }, opt.title), status);
  const restartBtn = el("button", { type: "button", class: "cc-restart",
    "aria-label": "Start over: new conversation" }, "Start over");
  const confirmBar = el("div", { class: "cc-confirm", role: "alertdialog", hidden: "",
    "aria-labelledby": "cc-confirm-text" });
  const confirmYes = el("button", { type: "button", class: "cc-confirm-yes" }, "Yes, start over");
  const confirmNo = el("button", { type: "button", class: "cc-confirm-no" }, "Cancel");
  confirmBar.append(el("p", { id: "cc-confirm-text" }, "Start a new conversation? This one, " +
    "and anything you told the assistant in it, will be cleared."), confirmYes, confirmNo);
  const closeBtn = el("button", { type: "button", class: "cc-close", "aria-label": "Close chat" });
  closeBtn.append(icon("M6 6l12 12M18 6L6 18"));
  header.append(heading, restartBtn, closeBtn);
  const scroller = el("div", { class: "cc-scroll" });
  const log = el("div", { class: "cc-log", role: "log", "aria-live": "polite",
    "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "0" });
  const typing = el("div", { class: "cc-typing", hidden: "" });
  const dots = el("span", { class: "cc-dots", "aria-hidden": "true" });
  dots.append(el("i"), el("i"), el("i"));
  typing.append(dots, srOnly("The assistant is typing"));
  scroller.append(log, typing);
  const form = el("form", { class: "cc-form" });
  const input = el("textarea", {
    id: "cc-input", class: "cc-input", rows: "1", maxlength: "1000", autocomplete: "off",
    placeholder: "Type your question\u2026", "aria-label": "Your message (Enter to send)"
  });
  const sendBtn = el("button", { type: "submit", class: "cc-send", "aria-label": "Send message" });
  sendBtn.append(icon("M3 20l18-8L3 4v6l12 2-12 2z"));
  form.append(input, sendBtn);
  panel.append(header, confirmBar,
    el("p", { id: "cc-disclaimer", class: "cc-disclaimer" }, opt.disclaimer), scroller, form);
  wrap.append(panel, launcher);

  // ---- rendering: [label](url) and bare URLs become links, everything else stays text ----
  const LINK = /\[([^\]\n]{1,200})\]\(([^)\s]+)\)|((?:https?:\/\/|www\.)[^\s<>"']+)/g;
  const safeUrl = (raw) => {
    try {
      const url = new URL(/^www\./i.test(raw) ? "https://" + raw : raw);
      return SAFE_SCHEMES.includes(url.protocol) ? url : null;
    } catch (e) { return null; }
  };
  const richText = (node, text) => {
    let last = 0;
    for (const m of text.matchAll(LINK)) {
      let [all, label, target, bare] = m;
      let trail = "";
      if (bare) {
        trail = (bare.match(/[.,;:!?)\]]+$/) || [""])[0];
        bare = bare.slice(0, bare.length - trail.length);
      }
      const url = safeUrl(target || bare);
      if (!url) continue;
      const a = el("a", { href: url.href }, label || bare);
      if (/^https?:$/.test(url.protocol)) {
        a.target = "_blank";
        a.rel = "noopener noreferrer";
        a.append(srOnly(" (opens in a new tab)"));
      }
      node.append(text.slice(last, m.index), a, trail);
      last = m.index + all.length;
    }
    node.append(text.slice(last));
  };
  // Follow the conversation; an answer taller than the view is shown from its start.
  let turnStart = null;
  const scrollDown = () => {
    const bottom = scroller.scrollHeight - scroller.clientHeight;
    scroller.scrollTop = turnStart ? Math.min(bottom, turnStart.offsetTop - 12) : bottom;
  };
  const clearReplies = () => log.querySelectorAll(".cc-replies").forEach((n) => n.remove());
  const render = (msg, isLast) => {
    const row = el("div", { class: "cc-msg cc-" + msg.from });
    const bubble = el("div", { class: "cc-bubble" });
    bubble.append(srOnly(msg.from === "user" ? "You said: " : "Assistant: "));
    const src = msg.image && safeUrl(msg.image);
    if (src) bubble.append(el("img", { src: src.href, alt: "Image from the assistant" }));
    else richText(bubble, String(msg.text || ""));
    row.append(bubble);
    log.append(row);
    if (msg.from !== "bot") turnStart = null; else if (!turnStart) turnStart = row;
    if (isLast && msg.buttons && msg.buttons.length) {
      const group = el("div", { class: "cc-replies", role: "group", "aria-label": "Suggested replies" });
      for (const b of msg.buttons) {
        const btn = el("button", { type: "button", class: "cc-reply" }, b.title || b.payload);
        btn.addEventListener("click", () => { send(b.payload || b.title, b.title); input.focus(); });
        group.append(btn);
      }
      log.append(group);
    }
    scrollDown();
  };
  const add = (msg) => {
    clearReplies();
    view.history.push(msg);
    save();
    render(msg, true);
    if (panel.hidden && msg.from === "bot") badge.hidden = false;
  };

  // ---- connection: unacknowledged messages stay queued and are re-sent on reconnect ----
  let socket = null;
  let ready = false;    // session confirmed on the current connection
  let epoch = 0;        // bumps per confirmed connection
  let failures = 0;     // connection errors since the last confirmed session
  let typingTimer = 0;
  const sentOn = {};    // message id -> epoch it was emitted on (this page only)
  const setStatus = (text, offline) => {
    status.textContent = text;
    wrap.classList.toggle("cc-offline", !!offline);
  };
  const showTyping = (on) => {
    typing.hidden = !on;
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => { typing.hidden = true; }, 20000);
    scrollDown();
  };
  const offline = () => {
    ready = false;
    showTyping(false);
    let text = epoch ? "Reconnecting\u2026" : "Connecting\u2026";
    if (failures > 2) text = "Can\u2019t reach the assistant. Retrying\u2026 or call the clinic.";
    if (view.queue.length && (epoch || failures)) text += " Your message will be sent when we are back.";
    setStatus(text, epoch || failures);
  };
  const queue = (text, first) => {
    const item = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 10), text };
    if (first) view.queue.unshift(item); else view.queue.push(item);
  };
  const flush = () => {
    if (!ready) return offline();
    for (const item of view.queue) {
      if (sentOn[item.id] === epoch) continue;
      sentOn[item.id] = epoch;
      showTyping(true);
      const data = { message: item.text, session_id: ident.sessionId, message_id: item.id };
      socket.emit("user_uttered", data, () => {  // acked once Rasa has sent every reply
        view.queue = view.queue.filter((q) => q.id !== item.id);
        if (!view.queue.length) showTyping(false);
        save();
      });
    }
  };
  const receive = (data) => {
    if (!data || typeof data !== "object") return;
    showTyping(false);
    const att = data.attachment;
    if (att && att.type === "image" && att.payload && att.payload.src) {
      add({ from: "bot", image: String(att.payload.src) });
    } else if (typeof data.text === "string" && data.text) {
      const buttons = (data.quick_replies || data.buttons || [])
        .filter((b) => b && (typeof b.title === "string" || typeof b.payload === "string"))
        .map((b) => ({ title: String(b.title || ""), payload: String(b.payload || "") }));
      add({ from: "bot", text: data.text, buttons });
    }
  };
  const loadClient = (done) => {
    if (window.io) return done();
    const s = el("script", { src: new URL("vendor/socket.io.min.js", base).href });
    s.onload = done;
    s.onerror = () => setStatus("Chat is unavailable right now. Please call the clinic.", true);
    document.head.append(s);
  };
  const connect = () => {
    if (socket) return;
    socket = {};  // placeholder while the client library loads
    loadClient(() => {
      if (typeof window.io !== "function") return setStatus("Chat is unavailable right now.", true);
      socket = window.io(serverUrl, { path: opt.path, reconnectionDelayMax: 5000 });
      socket.on("connect", () => {
        ready = false;
        if (toEnd) { socket.emit("session_restart", { session_id: toEnd }); toEnd = null; }
        socket.emit("session_request", { session_id: ident.sessionId || null });
      });
      socket.on("session_confirm", (id) => {
        ident.sessionId = typeof id === "string" ? id : id && id.session_id;
        ready = true;
        epoch += 1;
        failures = 0;
        setStatus(opt.subtitle);
        if (opt.initPayload && ident.greeted !== ident.sessionId) {
          ident.greeted = ident.sessionId;
          queue(opt.initPayload, true);
        }
        save();
        flush();
      });
      socket.on("bot_uttered", receive);
      socket.on("disconnect", offline);
      socket.on("connect_error", () => { failures += 1; offline(); });
    });
  };
  const send = (text, shown) => {
    text = String(text).trim();
    if (!text) return;
    add({ from: "user", text: shown || text });
    queue(text);
    save();
    connect();
    flush();
  };

  // ---- open / close / start over ----
  const setOpen = (open, moveFocus) => {
    panel.hidden = !open;
    wrap.classList.toggle("cc-open", open);
    launcher.setAttribute("aria-expanded", String(open));
    launcher.setAttribute("aria-label", (open ? "Close chat: " : "Open chat: ") + opt.title);
    try { sessionStorage.setItem(KEY + ":open", open ? "1" : ""); } catch (e) { /* ignore */ }
    if (open) {
      badge.hidden = true;
      if (!view.history.length && opt.greeting) add({ from: "bot", text: opt.greeting });
      connect();
      scrollDown();
      if (moveFocus) input.focus();
    } else if (moveFocus) {
      launcher.focus();
    }
  };
  // End this tab's conversation here and in Rasa (personal details cleared), start anew.
  const restart = (notice) => {
    const old = ident.sessionId;
    view = ident = { history: [], queue: [] };
    save(false);
    log.textContent = "";
    turnStart = null;
    showTyping(false);
    if (notice) add({ from: "bot", text: notice });
    if (opt.greeting) add({ from: "bot", text: opt.greeting });
    if (socket && socket.connected) {
      ready = false;
      if (old) socket.emit("session_restart", { session_id: old });
      socket.emit("session_request", { session_id: null });
    } else if (old) {
      toEnd = old;
    }
  };
  const askRestart = (show) => {
    confirmBar.hidden = !show;
    (show ? confirmNo : restartBtn).focus();
  };
  // A conversation left alone for `idleMs` ends, even while the tab stays open.
  const checkIdle = () => {
    if (ident.sessionId && idle()) {
      restart("This conversation ended after " + Math.round(opt.idleMs / 60e3) +
        " minutes without activity. You can start a new one below.");
    }
  };
  setInterval(checkIdle, 30e3);
  document.addEventListener("visibilitychange", checkIdle);

  launcher.addEventListener("click", () => { checkIdle(); setOpen(panel.hidden, true); });
  closeBtn.addEventListener("click", () => setOpen(false, true));
  restartBtn.addEventListener("click", () => askRestart(true));
  confirmNo.addEventListener("click", () => askRestart(false));
  confirmYes.addEventListener("click", () => {
    confirmBar.hidden = true;
    restart();
    input.focus();
  });
  panel.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { e.preventDefault(); setOpen(false, true); }
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    input.value = "";
    input.style.height = "";
    send(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    input.style.height = "";
    input.style.height = Math.min(input.scrollHeight, 120) + "px";
  });

  // ---- start: show this tab's history at once, reconnect if there is a conversation ----
  const start = () => {
    document.body.append(host);
    view.history.forEach((m, i) => render(m, i === view.history.length - 1));
    let wasOpen = false;
    try { wasOpen = sessionStorage.getItem(KEY + ":open") === "1"; } catch (e) { /* ignore */ }
    if (ident.sessionId || view.queue.length || toEnd) connect();
    if (wasOpen) setOpen(true, false);
  };
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
