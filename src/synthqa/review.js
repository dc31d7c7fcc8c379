// The review page of `synthqa review`: filter, move, decide. Every decision is POSTed at once; the server
// appends it to curation.jsonl before answering, so what the page shows as decided is on disk.
(function () {
  "use strict";
  var errors = document.getElementById("js-errors");
  window.addEventListener("error", function (e) { errors.textContent += "error: " + e.message + "\n"; });
  var rows = JSON.parse(document.getElementById("pairs-data").textContent);
  var token = new URLSearchParams(location.search).get("token") || "";
  var $ = function (id) { return document.getElementById(id); };
  var body = document.querySelector("#pairs tbody"), status = $("status");
  var PAGE = 20, shown = rows, sel = 0, editing = null;

  var docs = {};
  rows.forEach(function (r) { docs[r.src] = true; });
  Object.keys(docs).sort().forEach(function (d) {
    var o = document.createElement("option"); o.value = d; o.textContent = d; $("doc").appendChild(o);
  });

  function say(text, bad) { status.textContent = text; status.className = bad ? "err" : ""; }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  }
  function keep(r) {
    var doc = $("doc").value, dec = $("decision").value, q = $("search").value.trim().toLowerCase();
    if (doc && r.src !== doc) return false;
    if (dec === "undecided" && r.d) return false;
    if (dec === "flagged" && !r.f.length) return false;
    if (dec && dec !== "undecided" && dec !== "flagged" && r.d !== dec) return false;
    return !q || (r.q + " " + r.c + " " + (r.a || "")).toLowerCase().indexOf(q) >= 0;
  }
  function filter() { shown = rows.filter(keep); sel = Math.min(sel, Math.max(0, shown.length - 1)); render(); }

  function questionCell(r, i) {
    var td = el("td", null, "q");
    if (editing === i) {
      var input = el("input"); input.id = "edit-input"; input.value = r.q;
      td.appendChild(input);
      setTimeout(function () { input.focus(); }, 0);
    } else {
      td.appendChild(el("span", r.q, "text"));
    }
    if (r.q !== r.g) td.appendChild(el("span", "generated: " + r.g, "gen"));
    if (r.a) td.appendChild(el("span", "answer: " + r.a, "a"));
    r.f.forEach(function (f) { td.appendChild(el("span", "⚑ " + f, "flag")); });
    if (r.nb) td.appendChild(el("span", "near: " + r.nb, "gen"));
    return td;
  }
  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE)), page = Math.floor(sel / PAGE);
    body.textContent = "";
    shown.slice(page * PAGE, page * PAGE + PAGE).forEach(function (r, k) {
      var i = page * PAGE + k, tr = el("tr", null, (i === sel ? "sel " : "") + (r.d || ""));
      tr.dataset.id = r.id; tr.dataset.index = i;
      tr.appendChild(el("td", r.s));
      tr.appendChild(questionCell(r, i));
      tr.appendChild(el("td", r.src + " p." + r.p + (r.r ? " (" + r.r + ")" : "")));
      tr.appendChild(el("td", i === sel || r.c.length <= 300 ? r.c : r.c.slice(0, 300) + " …", "c"));
      var act = el("td", null, "act");
      act.appendChild(el("span", r.d || "undecided", "d " + (r.d || ""))); act.appendChild(el("br"));
      [["accept", "a"], ["reject", "r"], ["edit", "e"], ["undo", "u"]].forEach(function (b) {
        var button = el("button", b[0] + " (" + b[1] + ")"); button.dataset.act = b[0]; act.appendChild(button);
      });
      tr.appendChild(act);
      body.appendChild(tr);
    });
    $("pager-info").textContent = shown.length + " of " + rows.length + " pairs · page " + (page + 1) + " of " + pages;
    var n = { accept: 0, reject: 0, edit: 0 }, flagged = 0, open = 0;
    rows.forEach(function (r) { if (r.d) n[r.d]++; if (r.f.length) { flagged++; if (!r.d) open++; } });
    $("counts").textContent = n.accept + " accepted · " + n.reject + " rejected · " + n.edit + " edited · " +
      flagged + " flagged (" + open + " undecided)";
  }

  function decide(i, decision, text) {
    var r = shown[i];
    if (!r) return;
    var payload = { id: r.id, decision: decision === "undo" ? "clear" : decision, text: text };
    fetch("/api/decision?token=" + encodeURIComponent(token), {
      method: "POST", headers: { "Content-Type": "application/json", "X-Synthqa-Token": token },
      body: JSON.stringify(payload)
    }).then(function (resp) {
      return resp.json().then(function (data) { return { ok: resp.ok, data: data }; });
    }).then(function (res) {
      if (!res.ok) { say(res.data.error || "not saved", true); return; }
      r.d = res.data.d; r.q = res.data.q; editing = null;
      say("saved: " + (r.d || "undecided") + " · " + r.q);
      filter();
      // After accept or reject, on to the next pair (unless the filter already hid this one).
      if ((decision === "accept" || decision === "reject") && shown[sel] === r) move(sel + 1);
    }).catch(function () {
      say("not saved: the review server is not running. Start `synthqa review` again: every decision " +
          "saved so far is kept.", true);
    });
  }
  function move(to) { sel = Math.min(Math.max(0, to), Math.max(0, shown.length - 1)); editing = null; render(); }
  function nextFlagged() {
    for (var k = 1; k <= shown.length; k++) {
      var i = (sel + k) % shown.length;
      if (shown[i].f.length && !shown[i].d) { move(i); return; }
    }
    say("no flagged pair is left undecided here");
  }

  body.addEventListener("click", function (e) {
    var act = e.target.dataset && e.target.dataset.act, tr = e.target.closest("tr");
    if (!tr) return;
    var i = Number(tr.dataset.index);
    if (!act) { if (editing === null) move(i); return; }
    sel = i;
    if (act === "edit") { editing = i; render(); } else { decide(i, act); }
  });
  body.addEventListener("keydown", function (e) {
    if (e.target.id !== "edit-input") return;
    if (e.key === "Enter") { e.preventDefault(); decide(editing, "edit", e.target.value); }
    if (e.key === "Escape") { e.preventDefault(); editing = null; render(); }
  });
  document.addEventListener("keydown", function (e) {
    var tag = e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || e.ctrlKey || e.metaKey || e.altKey) return;
    var keys = { j: function () { move(sel + 1); }, ArrowDown: function () { move(sel + 1); },
      k: function () { move(sel - 1); }, ArrowUp: function () { move(sel - 1); },
      a: function () { decide(sel, "accept"); }, r: function () { decide(sel, "reject"); },
      u: function () { decide(sel, "undo"); }, n: nextFlagged,
      e: function () { if (shown[sel]) { editing = sel; render(); } } };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  ["doc", "decision"].forEach(function (id) { $(id).addEventListener("change", function () { sel = 0; filter(); }); });
  $("search").addEventListener("input", function () { sel = 0; filter(); });
  $("next-flagged").addEventListener("click", nextFlagged);
  $("prev").addEventListener("click", function () { move(sel - PAGE); });
  $("next").addEventListener("click", function () { move(sel + PAGE); });
  filter();
  document.body.setAttribute("data-ready", "1");
})();
