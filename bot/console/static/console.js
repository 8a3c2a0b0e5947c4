/* Staff console: live counts and live transcripts over server-sent events (/events).
   No inline scripts (the Content-Security-Policy forbids them); everything works without
   this file, it only saves a reload. */
(function () {
  "use strict";

  var body = document.body;
  var conversation = body.getAttribute("data-conversation") || "";

  function setCount(name, value) {
    var nodes = document.querySelectorAll('[data-count="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) {
      var inStat = nodes[i].parentNode && nodes[i].parentNode.classList.contains("stat");
      nodes[i].textContent = value ? String(value) : (inStat ? "0" : "");
    }
  }

  function transcriptBox() { return document.getElementById("transcript"); }

  function scrollToEnd() {
    var box = transcriptBox();
    if (box) { box.scrollTop = box.scrollHeight; }
  }

  function refreshTranscript() {
    var box = transcriptBox();
    if (!box) { return; }
    var atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 60;
    fetch(box.getAttribute("data-source"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        box.innerHTML = html;
        if (atEnd) { scrollToEnd(); }
      });
  }

  var lastTotal = null;
  function onCounts(event) {
    var data = JSON.parse(event.data);
    setCount("total", data.total);
    setCount("waiting", data.waiting);
    setCount("alerts", data.alerts);
    setCount("callbacks", data.callbacks);
    setCount("bookings", data.bookings);
    setCount("queue", data.bookings + data.callbacks);
    var note = document.querySelector("[data-live-note]");
    if (note && lastTotal !== null && data.total > lastTotal) { note.hidden = false; }
    lastTotal = data.total;
    if (conversation && data.conversation_last_event !== undefined) {
      var last = parseInt(body.getAttribute("data-last-event") || "0", 10);
      if (data.conversation_last_event > last) {
        body.setAttribute("data-last-event", String(data.conversation_last_event));
        refreshTranscript();
      }
    }
  }

  if (window.EventSource && document.querySelector(".sidebar")) {
    var url = "/events" + (conversation ? "?conversation=" + encodeURIComponent(conversation) : "");
    var source = new EventSource(url);
    source.addEventListener("counts", onCounts);
  }

  var reply = document.getElementById("reply-text");
  if (reply) {
    reply.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        reply.form.requestSubmit ? reply.form.requestSubmit() : reply.form.submit();
      }
    });
  }
  scrollToEnd();
})();
