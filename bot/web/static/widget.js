/* Clinic chat widget: <script src=".../widget.js"> plus window.ClinicChat = {...}.
 * Talks to Rasa's socket.io channel (bot/channels/socketio.py) via the vendored
 * socket.io-client; no other requests. Message text is only ever set as text nodes,
 * never as HTML, so a bot reply cannot inject markup.
 * Shared devices: one conversation per tab (sessionStorage only, nothing in localStorage),
 * ended after `sessionIdleMinutes` (30) without activity, and "Start over" (after a
 * confirmation) ends it in Rasa too (`session_restart`: slots and personal details
 * cleared), so the next person at the computer never sees or continues it.
 * Bot messages may carry a `clinic` marker (bot/channels/socketio.py): `staff` replies show
 * the staff member's name, `staff_joined` / `staff_left` are shown as markers, `emergency` /
 * `urgent` / `crisis` as an alert (with a tap-to-call link when there is a `tel`),
 * `feedback` as thumbs on the answer, and `ask` sets the keyboard for the question asked.
 * Consecutive messages from one speaker are grouped, with a name and the time.
 * Icons are inline SVG (paths from Lucide, ISC licence): emoji at the start of a button
 * title or message become an icon or are dropped, as many devices have no emoji font. */
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
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z",
    down: "M6 9l6 6 6-6",
    close: "M18 6 6 18M6 6l12 12",
    send: "M3 20l18-8L3 4v6l12 2-12 2z",
    check: "M20 6 9 17l-5-5",
    pencil: "M21.17 6.81a1 1 0 0 0-3.99-3.99L3.84 16.17a2 2 0 0 0-.5.83l-1.32 4.35a.5.5 0 0 0 .62.62l4.35-1.32a2 2 0 0 0 .83-.5zM15 5l4 4",
    up: "M7 10v12M15 5.88 14 10h5.83a2 2 0 0 1 1.92 2.56l-2.33 8A2 2 0 0 1 17.5 22H4a2 2 0 0 1-2-2v-8a2 2 0 0 1 2-2h2.76a2 2 0 0 0 1.79-1.11L12 2a3.13 3.13 0 0 1 3 3.88Z",
    down2: "M17 14V2M9 18.12 10 14H4.17a2 2 0 0 1-1.92-2.56l2.33-8A2 2 0 0 1 6.5 2H20a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-2.76a2 2 0 0 0-1.79 1.11L12 22a3.13 3.13 0 0 1-3-3.88Z",
    phone: "M22 16.92v3a2 2 0 0 1-2.18 2 19.79 19.79 0 0 1-8.63-3.07 19.5 19.5 0 0 1-6-6 19.79 19.79 0 0 1-3.07-8.67A2 2 0 0 1 4.11 2h3a2 2 0 0 1 2 1.72 12.84 12.84 0 0 0 .7 2.81 2 2 0 0 1-.45 2.11L8.09 9.91a16 16 0 0 0 6 6l1.27-1.27a2 2 0 0 1 2.11-.45 12.84 12.84 0 0 0 2.81.7A2 2 0 0 1 22 16.92z",
    alert: "m21.73 18-8-14a2 2 0 0 0-3.48 0l-8 14A2 2 0 0 0 4 21h16a2 2 0 0 0 1.73-3ZM12 9v4M12 17h.01",
    heart: "M19 14c1.49-1.46 3-3.21 3-5.5A5.5 5.5 0 0 0 16.5 3c-1.76 0-3 .5-4.5 2-1.5-1.5-2.74-2-4.5-2A5.5 5.5 0 0 0 2 8.5c0 2.3 1.5 4.05 3 5.5l7 7Z",
    person: "M19 21v-2a4 4 0 0 0-4-4H9a4 4 0 0 0-4 4v2M12 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
    info: "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20zM12 16v-4M12 8h.01",
    restart: "M3 12a9 9 0 1 0 9-9 9.75 9.75 0 0 0-6.74 2.74L3 8M3 3v5h5",
    calendar: "M8 2v4M16 2v4M3 10h18M5 4h14a2 2 0 0 1 2 2v14a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    cross: "M10 4h4v6h6v4h-6v6h-4v-6H4v-4h6z"
  };
  const icon = (name) => {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    const path = document.createElementNS(ns, "path");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", "cc-i cc-i-" + name);
    path.setAttribute("d", ICONS[name] || name);
    svg.append(path);
    return svg;
  };
  // Leading emoji (with variation selectors, skin tones, ZWJ sequences) -> an icon name.
  const EMOJI = /(?:\p{Extended_Pictographic}|\p{Regional_Indicator})(?:\uFE0F|\u20E3|[\u{1F3FB}-\u{1F3FF}]|\u200D\p{Extended_Pictographic})*/gu;
  const LEADING = new RegExp("^\\s*(?:" + EMOJI.source + "\\s*)+", "u");
  const EMOJI_ICON = { "\u{1F44D}": "up", "\u{1F44E}": "down2", "\u2705": "check", "\u2714": "check",
    "\u2611": "check", "\u270F": "pencil", "\u{1F4DD}": "pencil", "\u274C": "close", "\u2716": "close",
    "\u{1F4DE}": "phone", "\u260E": "phone", "\u{1F4C5}": "calendar", "\u{1F5D3}": "calendar",
    "\u26A0": "alert", "\u2139": "info", "\u2764": "heart" };
  const splitEmoji = (text) => {
    const lead = String(text).match(LEADING);
    const first = lead ? String.fromCodePoint(lead[0].trim().codePointAt(0)) : "";
    const rest = (lead ? String(text).slice(lead[0].length) : String(text));
    return { icon: EMOJI_ICON[first] || null, text: rest };
  };
  const withoutEmoji = (text) => splitEmoji(text).text.replace(EMOJI, "").replace(/ {2,}/g, " ").trim();
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
  css.onload = css.onerror = () => {
    wrap.style.visibility = "";
    if (!panel.hidden) scrollDown();  // the history now has its real height
  };
  root.append(css, wrap);

  const launcher = el("button", {
    type: "button", class: "cc-launcher", "aria-expanded": "false", "aria-controls": "cc-panel",
    "aria-label": "Open chat: " + opt.title
  });
  const badge = el("span", { class: "cc-badge", hidden: "" });
  badge.append(srOnly("New message"));
  launcher.append(icon("chat"), icon("down"), el("span", { class: "cc-launcher-text", "aria-hidden": "true" },
      "Questions? Chat with us"), badge);

  const panel = el("section", {
    id: "cc-panel", class: "cc-panel", role: "dialog", "aria-labelledby": "cc-title",
    "aria-describedby": "cc-disclaimer", hidden: ""
  });
  const header = el("header", { class: "cc-header" });
  const heading = el("div", { class: "cc-heading" });
  const status = el("p", { class: "cc-status", role: "status" }, opt.subtitle);
  heading.append(el("h2", { id: "cc-title", class: "cc-title" }, opt.title), status);
  const restartBtn = el("button", { type: "button", class: "cc-restart", "aria-expanded": "false",
    "aria-controls": "cc-confirm", "aria-label": "Start over: new conversation" });
  restartBtn.append(icon("restart"), el("span", { class: "cc-restart-text" }, "Start over"));
  // Start over asks first, inside the widget (not window.confirm): Cancel has the focus,
  // Escape cancels, and nothing is cleared until "Yes, start over".
  const confirmBar = el("div", { id: "cc-confirm", class: "cc-confirm", role: "alertdialog",
    hidden: "", "aria-modal": "false", "aria-labelledby": "cc-confirm-title",
    "aria-describedby": "cc-confirm-text" });
  const confirmYes = el("button", { type: "button", class: "cc-confirm-yes" }, "Yes, start over");
  const confirmNo = el("button", { type: "button", class: "cc-confirm-no" }, "Cancel");
  const confirmHead = el("p", { id: "cc-confirm-title", class: "cc-confirm-title" });
  confirmHead.append(icon("restart"), document.createTextNode("Start a new conversation?"));
  confirmBar.append(confirmHead, el("p", { id: "cc-confirm-text" }, "This conversation, and " +
    "anything you told the assistant in it, will be cleared from this device and the assistant."),
  confirmNo, confirmYes);
  const closeBtn = el("button", { type: "button", class: "cc-close", "aria-label": "Close chat" });
  closeBtn.append(icon("close"));
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
  sendBtn.append(icon("send"));
  form.append(input, sendBtn);
  // The notice is in full until the patient first writes; then one line, "i" expands it.
  const notice = el("div", { class: "cc-notice" });
  const noticeText = el("p", { id: "cc-disclaimer", class: "cc-disclaimer" }, opt.disclaimer);
  const noticeBtn = el("button", { type: "button", class: "cc-notice-toggle", hidden: "",
    "aria-expanded": "false", "aria-controls": "cc-disclaimer", "aria-label": "Show the full notice" });
  noticeBtn.append(icon("info"));
  notice.append(noticeText, noticeBtn);
  panel.append(header, confirmBar, notice, scroller, form);
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
  // Follow the conversation; an answer taller than the view is shown from its start. The
  // view stays pinned there while its size changes (stylesheet arriving, on-screen keyboard,
  // notice expanding) until the patient scrolls away.
  let turnStart = null;
  let pinned = true;
  let setTop = -1;
  const scrollDown = () => {
    const bottom = scroller.scrollHeight - scroller.clientHeight;
    scroller.scrollTop = turnStart ? Math.min(bottom, turnStart.offsetTop - 12) : bottom;
    setTop = scroller.scrollTop;
    pinned = true;
  };
  scroller.addEventListener("scroll", () => {
    if (Math.abs(scroller.scrollTop - setTop) > 2) {
      pinned = scroller.scrollHeight - scroller.clientHeight - scroller.scrollTop < 48;
      if (pinned) turnStart = null;
    }
  });
  if (window.ResizeObserver) {
    const follow = new ResizeObserver(() => { if (pinned && !panel.hidden) scrollDown(); });
    follow.observe(scroller);
    follow.observe(log);
  }
  const clearReplies = () => {
    log.querySelectorAll(".cc-replies").forEach((n) => n.remove());
    log.querySelectorAll(".cc-feedback button:not([aria-pressed=true])").forEach((b) => {
      b.disabled = true;
    });
  };

  // ---- messages: grouped by speaker, with a name, an avatar and the time ----
  const KINDS = {
    emergency: { label: "Emergency advice", icon: "alert" },
    urgent: { label: "Urgent advice", icon: "alert" },
    crisis: { label: "Support is available now", icon: "heart" }
  };
  const kindOf = (msg) => (msg.clinic && typeof msg.clinic.kind === "string" ? msg.clinic.kind : "");
  const nameOf = (msg) => String((msg.clinic && msg.clinic.name) || "").slice(0, 60);
  const TEL = /^\+?\d{2,15}$/;
  const lang = document.documentElement.lang || undefined;
  const timeText = (at) => {
    try { return new Date(at).toLocaleTimeString(lang, { hour: "numeric", minute: "2-digit" }); } catch (e) {
      return new Date(at).toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
    }
  };
  const stamp = (at) => (at ? el("time", { class: "cc-time", datetime: new Date(at).toISOString() },
    timeText(at)) : el("span", { class: "cc-time" }));
  const keyOf = (msg) => {
    if (msg.from === "user") return "user";
    const kind = kindOf(msg);
    if (kind === "staff") return "staff:" + nameOf(msg);
    if (KINDS[kind]) return "alert:" + kind;
    return "bot";
  };
  let group = null;  // the message being added to: { key, row, body, meta }
  const startGroup = (msg, live) => {
    const key = keyOf(msg);
    const kind = kindOf(msg);
    const row = el("div", { class: "cc-msg " + (msg.from === "user" ? "cc-user" : "cc-bot") });
    const body = el("div", { class: "cc-body" });
    const meta = el("p", { class: "cc-meta", "aria-hidden": "true" });
    let prefix = "You said: ";
    if (msg.from !== "user") {
      const avatar = el("span", { class: "cc-avatar", "aria-hidden": "true" });
      let name = opt.title;
      prefix = "Assistant: ";
      if (kind === "staff") {
        name = nameOf(msg) || "Clinic staff";
        row.classList.add("cc-staff");
        avatar.textContent = name.charAt(0).toUpperCase();
        prefix = name + " (clinic staff): ";
        meta.append(el("span", { class: "cc-name" }, name), el("span", { class: "cc-role" }, "Clinic staff"));
      } else if (KINDS[kind]) {
        row.classList.add("cc-alert", "cc-" + kind);
        if (live) row.setAttribute("role", "alert");
        avatar.append(icon(KINDS[kind].icon));
        meta.append(el("span", { class: "cc-name" }, KINDS[kind].label));
        prefix = KINDS[kind].label + ": ";
      } else {
        avatar.append(icon("cross"));
        meta.append(el("span", { class: "cc-name" }, name));
      }
      row.append(avatar);
    }
    meta.append(stamp(msg.at));
    body.append(meta);
    row.append(body);
    log.append(row);
    group = { key, row, body, meta, prefix };
    return group;
  };
  const touchTime = (g, at) => {
    const old = g.meta.querySelector(".cc-time");
    if (old) old.replaceWith(stamp(at));
  };
  const bubbleFor = (g, msg) => {
    const bubble = el("div", { class: "cc-bubble" });
    if (g.prefix) { bubble.append(srOnly(g.prefix)); g.prefix = ""; }
    const src = msg.image && safeUrl(msg.image);
    if (src) {
      bubble.append(el("img", { src: src.href, alt: "Image from the assistant" }));
    } else {
      const text = msg.from === "user" ? { icon: null, text: String(msg.text || "") }
        : splitEmoji(String(msg.text || ""));
      if (text.icon && !KINDS[kindOf(msg)]) bubble.append(icon(text.icon));
      richText(bubble, text.text);
    }
    return bubble;
  };
  const callLink = (g, tel) => {
    if (!TEL.test(tel) || g.body.querySelector(".cc-call")) return;
    const a = el("a", { class: "cc-call", href: "tel:" + tel });
    a.append(icon("phone"), document.createTextNode("Call " + tel));
    g.body.append(a);
  };
  const marker = (msg) => {  // staff joined / left: a line across the conversation
    group = null;
    const kind = kindOf(msg);
    const who = nameOf(msg) || "A member of staff";
    const text = String(msg.text || "").trim() || (kind === "staff_joined"
      ? who + " from the clinic has joined the conversation." : who + " has left the conversation.");
    const row = el("div", { class: "cc-event cc-" + kind });
    const line = el("p", { class: "cc-event-text" });
    line.append(icon("person"), document.createTextNode(text), stamp(msg.at));
    row.append(line);
    log.append(row);
  };
  const feedback = (msg, pending, index) => {  // thumbs under the answer they are about
    const bar = el("div", { class: "cc-feedback", role: "group", "aria-label": String(msg.text || "Was this helpful?") });
    bar.append(el("span", { class: "cc-feedback-q", "aria-hidden": "true" }, withoutEmoji(msg.text || "Was this helpful?")));
    for (const b of msg.buttons || []) {
      const part = splitEmoji(b.title || "");
      const label = withoutEmoji(b.title || "") || b.payload;
      const name = part.icon === "up" ? "up" : part.icon === "down2" ? "down2"
        : /^\/affirm$/.test(b.payload) ? "up" : /^\/deny$/.test(b.payload) ? "down2" : null;
      const btn = el("button", { type: "button", class: "cc-thumb", title: label,
        "aria-label": label, "aria-pressed": String(msg.answered === b.payload) });
      if (name) btn.append(icon(name)); else btn.textContent = label;
      btn.disabled = !pending || !!msg.answered;
      btn.addEventListener("click", () => {
        const stored = view.history[index];
        if (stored) stored.answered = b.payload;
        btn.setAttribute("aria-pressed", "true");
        send(b.payload || b.title, label);
        input.focus();
      });
      bar.append(btn);
    }
    return bar;
  };
  const replies = (buttons) => {
    const box = el("div", { class: "cc-replies", role: "group", "aria-label": "Suggested replies" });
    for (const b of buttons) {
      const part = splitEmoji(b.title || "");
      const label = withoutEmoji(b.title || "") || b.payload;
      const btn = el("button", { type: "button", class: "cc-reply" });
      if (part.icon) btn.append(icon(part.icon));
      btn.append(document.createTextNode(label));
      btn.addEventListener("click", () => { send(b.payload || b.title, label); input.focus(); });
      box.append(btn);
    }
    log.append(box);
  };
  // `pending`: the latest message, whose buttons can still be used; `index`: its place in history.
  const render = (msg, pending, live, index) => {
    const kind = kindOf(msg);
    if (kind === "staff_joined" || kind === "staff_left") {
      marker(msg);
      turnStart = null;
    } else if (kind === "feedback" && group && group.key === "bot") {
      group.body.append(feedback(msg, pending, index));
    } else {
      const key = keyOf(msg);
      const g = group && group.key === key && group.row === log.lastElementChild ? group : startGroup(msg, live);
      if (g !== group) group = g;
      g.body.append(bubbleFor(g, msg));
      const cta = g.body.querySelector(".cc-call");
      if (cta) g.body.append(cta);  // the call link stays last in the alert
      else if (KINDS[kind] && msg.clinic.tel) callLink(g, String(msg.clinic.tel));
      if (msg.at) touchTime(g, msg.at);
      if (msg.from !== "bot") turnStart = null; else if (!turnStart) turnStart = g.row;
      if (pending && msg.buttons && msg.buttons.length) replies(msg.buttons);
    }
    scrollDown();
  };
  // The input's hint and keyboard follow the question the assistant just asked.
  const MODES = [
    [/phone|mobile|tel/i, { inputmode: "tel", autocomplete: "tel", placeholder: "Your mobile number", label: "your mobile number" }],
    [/email/i, { inputmode: "email", autocomplete: "email", placeholder: "Your email address", label: "your email address" }],
    [/name/i, { inputmode: "text", autocomplete: "name", placeholder: "Your full name", label: "your full name" }]
  ];
  const DEFAULT_MODE = { inputmode: "text", autocomplete: "off", placeholder: "Type your question\u2026", label: "" };
  const followQuestion = () => {
    const last = view.history[view.history.length - 1];
    const slot = last && last.from === "bot" && kindOf(last) === "ask" ? String(last.clinic.slot || "") : "";
    const found = slot && MODES.find(([re]) => re.test(slot));
    const mode = found ? found[1] : DEFAULT_MODE;
    input.setAttribute("inputmode", mode.inputmode);
    input.setAttribute("autocomplete", mode.autocomplete);
    input.setAttribute("placeholder", mode.placeholder);
    input.setAttribute("aria-label", "Your message" + (mode.label ? ": " + mode.label : "") + " (Enter to send)");
    if (mode.inputmode === "text") input.removeAttribute("autocapitalize");
    else input.setAttribute("autocapitalize", "off");
    if (mode.autocomplete === "name") input.setAttribute("autocapitalize", "words");
  };
  // After the patient's first message the notice shrinks to one line (the "i" expands it).
  let noticeOpen = false;
  const followNotice = () => {
    const spoke = view.history.some((m) => m.from === "user");
    notice.classList.toggle("cc-collapsed", spoke && !noticeOpen);
    noticeBtn.hidden = !spoke;
    noticeBtn.setAttribute("aria-expanded", String(!spoke || noticeOpen));
    noticeBtn.setAttribute("aria-label", noticeOpen ? "Show less of the notice" : "Show the full notice");
  };
  noticeBtn.addEventListener("click", () => { noticeOpen = !noticeOpen; followNotice(); });
  const add = (msg) => {
    msg.at = msg.at || Date.now();
    if (kindOf(msg) === "feedback") {  // keeps the answer's own suggested replies
      log.querySelectorAll(".cc-feedback button").forEach((b) => { b.disabled = true; });
    } else {
      clearReplies();
    }
    view.history.push(msg);
    save();
    render(msg, true, true, view.history.length - 1);
    followQuestion();
    followNotice();
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
      socket.emit("user_uttered", data, (ack) => {  // acked once Rasa has sent every reply
        if (ack && ack.error === "in_progress") {  // another server is answering it, or died doing so
          delete sentOn[item.id];
          setTimeout(flush, Math.min(30, Math.max(1, Number(ack.retry_after) || 3)) * 1000);
          return;
        }
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
      const clinic = data.clinic && typeof data.clinic === "object" && typeof data.clinic.kind === "string"
        ? { kind: data.clinic.kind, name: data.clinic.name == null ? undefined : String(data.clinic.name),
          slot: data.clinic.slot == null ? undefined : String(data.clinic.slot),
          tel: data.clinic.tel == null ? undefined : String(data.clinic.tel) }
        : undefined;
      add({ from: "bot", text: data.text, buttons, clinic });
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
      requestAnimationFrame(scrollDown);  // once laid out: open at the newest message
      if (moveFocus) input.focus();
    } else {
      askRestart(false, false);
      if (moveFocus) launcher.focus();
    }
  };
  // End this tab's conversation here and in Rasa (personal details cleared), start anew.
  const restart = (why) => {
    const old = ident.sessionId;
    view = ident = { history: [], queue: [] };
    save(false);
    log.textContent = "";
    group = null;
    turnStart = null;
    noticeOpen = false;
    showTyping(false);
    if (why) add({ from: "bot", text: why });
    if (opt.greeting) add({ from: "bot", text: opt.greeting });
    followQuestion();
    followNotice();
    if (socket && socket.connected) {
      ready = false;
      if (old) socket.emit("session_restart", { session_id: old });
      socket.emit("session_request", { session_id: null });
    } else if (old) {
      toEnd = old;
    }
  };
  const askRestart = (show, moveFocus) => {
    confirmBar.hidden = !show;
    restartBtn.setAttribute("aria-expanded", String(show));
    if (moveFocus !== false) (show ? confirmNo : restartBtn).focus();
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
    askRestart(false, false);
    restart();
    input.focus();
  });
  panel.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault();
    if (!confirmBar.hidden) askRestart(false); else setOpen(false, true);
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
    const n = view.history.length;
    const lastIsFeedback = n > 1 && kindOf(view.history[n - 1]) === "feedback";
    view.history.forEach((m, i) => render(m, i === n - 1 || (lastIsFeedback && i === n - 2), false, i));
    followQuestion();
    followNotice();
    let wasOpen = false;
    try { wasOpen = sessionStorage.getItem(KEY + ":open") === "1"; } catch (e) { /* ignore */ }
    if (ident.sessionId || view.queue.length || toEnd) connect();
    if (wasOpen) setOpen(true, false);
  };
  if (document.body) start(); else document.addEventListener("DOMContentLoaded", start);
})();
