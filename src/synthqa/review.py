"""``synthqa review``: the report's page with review controls, served on 127.0.0.1 for one person.

Security: the server binds 127.0.0.1 only, on a random port, and answers nothing without the random token
of the URL it prints (403), so neither another user of the machine nor a web page in the browser can read
the pairs or post decisions; it also refuses Host names other than its own (DNS rebinding).

Durability: every decision is appended to ``OUT/curation.jsonl`` and fsynced before the page hears back
(``curate.append_decision``); the page is rendered from that file on every load, so a closed tab or a killed
server loses nothing and a restarted one shows every decision made.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from . import curate, filters
from .dataset import read_generated, read_manifest, read_rows
from .errors import DatasetError, OutputError
from .report import CSS, script_json, summary_html

HOST = "127.0.0.1"
TOKEN_HEADER = "X-Synthqa-Token"
LOW_RANK = 3  # flagged when the own chunk is in neither ranker's top 3: the question may fit other chunks
NEIGHBOUR_RATIO = 80  # flagged when another question is this close (the filters drop at 92)
MAX_BODY = 64 * 1024
FLAG_NAMES = {"low_rank": f"own chunk not in the top {LOW_RANK}", "ungrounded": "answer not in the chunk",
              "near_duplicate": "a near-duplicate question exists"}


class ReviewError(Exception):
    """A request the review server refuses: ``status`` and one line for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Pair:
    """One pair as the page shows it, with the flags that make it worth a look."""

    row: dict
    chunk: str
    flags: tuple[str, ...]
    neighbour: str | None


class Review:
    """The pairs of one output folder, their flags, and the decisions file they are judged in."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        if not self.out.is_dir():
            raise DatasetError(f"{out} is not a folder: review the output folder of `synthqa generate`")
        self.manifest = read_manifest(self.out)
        rows = read_generated(self.out)
        self.chunk_text = {c["id"]: c["text"] for c in read_rows(self.out, "corpus")}
        nearest = filters.nearest_questions([r["text"] for r in rows])
        self.pairs: dict[str, Pair] = {}
        for row, (j, score) in zip(rows, nearest):
            close, chunk = score >= NEIGHBOUR_RATIO, self.chunk_text[row["chunk_id"]]
            self.pairs[row["id"]] = Pair(row, chunk, _flags(row, chunk, close), rows[j]["text"] if close else None)
        self.lock = threading.Lock()  # one decision at a time: each sees the ones before it

    @property
    def flagged(self) -> int:
        return sum(1 for p in self.pairs.values() if p.flags)

    def decide(self, qid: str, decision: str, text: str | None = None) -> dict:
        """Record one decision; returns the pair's new state for the page. Edits must pass the filters."""
        pair = self.pairs.get(qid)
        if pair is None:
            raise ReviewError(404, f"no pair {qid!r} in this dataset")
        if decision not in curate.DECISIONS:
            raise ReviewError(400, f"decision {decision!r} is not one of {', '.join(curate.DECISIONS)}")
        if decision == "edit" and not isinstance(text, str):
            raise ReviewError(400, "an edit needs the new question text")
        record = curate.Decision.now(qid, decision, pair.row["text"], text if decision == "edit" else None)
        with self.lock:
            if decision == "edit":
                self._check_edit(qid, record.text)
            curate.append_decision(self.out, record)
        return {"id": qid, "d": "" if decision == "clear" else decision,
                "q": record.text if decision == "edit" else pair.row["text"]}

    def _check_edit(self, qid: str, text: str) -> None:
        """The filters `curate` will apply, against the questions as the person's decisions left them."""
        rows = [p.row for p in self.pairs.values()]
        current = curate.apply_decisions(rows, curate.read_decisions(self.out).latest, self.chunk_text)
        others = [r for r in current.rows if r["id"] != qid]
        reason = curate.refused_edits([*others, self.pairs[qid].row], {qid: text}, self.chunk_text).get(qid)
        if reason is not None:
            raise ReviewError(422, f"not saved: the question filters refuse it: "
                                   f"{filters.QUESTION_DROP_REASONS.get(reason, reason)}")

    def page(self) -> str:
        """The review page, with every decision recorded so far."""
        latest = curate.read_decisions(self.out).latest
        data = []
        for qid, pair in self.pairs.items():
            row, d = pair.row, latest.get(qid)
            standing = d is not None and d.question == row["text"]  # a decision about an older question is moot
            data.append({
                "id": qid, "s": row["split"], "g": row["text"], "q": d.text if standing and d.text else row["text"],
                "d": d.decision if standing else "", "a": row["answer"], "c": pair.chunk, "src": row["source"],
                "p": row["page"], "r": _ranks(row), "f": [FLAG_NAMES[f] for f in pair.flags], "nb": pair.neighbour,
            })
        title = html.escape(str(self.out))
        return _PAGE.format(title=title, css=CSS + _CSS, summary=summary_html(self.manifest),
                            payload=script_json(data), js=resources.files("synthqa").joinpath("review.js").read_text())


def _flags(row: dict, chunk: str, close: bool) -> tuple[str, ...]:
    ranks = [r for r in (row["bm25_rank"], row["embed_rank"]) if r is not None]
    found = []
    if ranks and min(ranks) > LOW_RANK:
        found.append("low_rank")
    if row["answer"] and not filters.answer_grounded(row["answer"], chunk):
        found.append("ungrounded")
    if close:
        found.append("near_duplicate")
    return tuple(found)


def _ranks(row: dict) -> str:
    return " · ".join(f"{name} {row[key]}" for key, name in (("bm25_rank", "bm25"), ("embed_rank", "embed"))
                      if row[key] is not None)


class ReviewServer(ThreadingHTTPServer):
    """The HTTP server of one review; ``url`` carries its token."""

    daemon_threads = True

    def __init__(self, review: Review, port: int = 0, token: str | None = None) -> None:
        self.review = review
        self.token = token or secrets.token_urlsafe(24)
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/?token={self.token}"


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer

    def log_message(self, *args) -> None:
        pass  # the terminal stays for the URL and for what matters

    def _send(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Referrer-Policy", "no-referrer")  # the token never leaves in a Referer
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; "
                         "style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
        self.end_headers()
        self.wfile.write(data)

    def _allowed(self) -> bool:
        port = self.server.server_address[1]
        given = parse_qs(urlsplit(self.path).query).get("token", [""])[0] or self.headers.get(TOKEN_HEADER, "")
        if self.headers.get("Host") not in (f"{HOST}:{port}", f"localhost:{port}"):
            self._send(403, json.dumps({"error": "forbidden: unknown Host"}))
            return False
        if not secrets.compare_digest(given.encode(), self.server.token.encode()):
            self._send(403, json.dumps({"error": "forbidden: open the URL `synthqa review` printed (it carries "
                                                 "the token)"}))
            return False
        return True

    def do_GET(self) -> None:
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/":
            return self._send(404, json.dumps({"error": "not found"}))
        self._send(200, self.server.review.page(), "text/html")

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/api/decision":
            return self._send(404, json.dumps({"error": "not found"}))
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ReviewError(413, "request too large")
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ReviewError(400, "send a JSON object {id, decision, text}")
            state = self.server.review.decide(str(body.get("id")), str(body.get("decision")), body.get("text"))
        except ReviewError as err:
            return self._send(err.status, json.dumps({"error": str(err)}))
        except ValueError:
            return self._send(400, json.dumps({"error": "send a JSON object {id, decision, text}"}))
        except OutputError as err:
            return self._send(500, json.dumps({"error": str(err)}))
        self._send(200, json.dumps(state))


_CSS = """
.bar{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0}.bar select,.bar input{padding:3px}
#status{min-height:1.4em;color:#555}#status.err{color:#b00020}
tr.sel{outline:2px solid #3b6ea8}tr.reject td{opacity:.45;text-decoration:line-through}
.d{font-size:11px;border-radius:4px;padding:1px 5px;background:#eee}.d.accept{background:#d6f0dc}
.d.reject{background:#f6d5d9}.d.edit{background:#fde9c8}.flag{font-size:11px;color:#8a4b00;display:block}
td.q input{width:100%;box-sizing:border-box}.a{color:#2b5d34;font-size:12px;display:block}
.gen{color:#777;font-size:12px;display:block}.keys{color:#666;font-size:12px}kbd{border:1px solid #bbb;
border-radius:3px;padding:0 3px;font-size:11px}td.act button{margin:1px}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>synthqa review · {title}</title><style>{css}</style></head>
<body>
<h1>synthqa review · {title}</h1>
<pre id="js-errors"></pre>
<h2>Summary</h2>{summary}
<h2>Review</h2>
<div class="bar">
<select id="doc" aria-label="document"><option value="">every document</option></select>
<select id="decision" aria-label="decision"><option value="">every pair</option><option value="undecided">undecided</option>
<option value="flagged">flagged</option><option value="accept">accepted</option><option value="reject">rejected</option>
<option value="edit">edited</option></select>
<input id="search" type="search" placeholder="search" aria-label="search">
<button id="next-flagged">next flagged (n)</button>
<span id="counts"></span>
</div>
<p class="keys"><kbd>j</kbd>/<kbd>k</kbd> move · <kbd>a</kbd> accept · <kbd>r</kbd> reject (both move on) · <kbd>e</kbd> edit
(<kbd>Enter</kbd> saves, <kbd>Esc</kbd> cancels) · <kbd>u</kbd> undo · <kbd>n</kbd> next flagged undecided pair.
Every decision is saved at once in <code>curation.jsonl</code>; apply them with <code>synthqa curate</code>.</p>
<div id="status" role="status"></div>
<div class="pager"><button id="prev">‹ prev</button> <span id="pager-info"></span> <button id="next">next ›</button></div>
<table id="pairs"><thead><tr><th>split</th><th>question</th><th>source</th><th>chunk</th><th>decision</th></tr></thead>
<tbody></tbody></table>
<script type="application/json" id="pairs-data">{payload}</script>
<script>{js}</script>
</body></html>
"""
