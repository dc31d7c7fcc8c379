"""One self-contained HTML report of a dataset: numbers, inline-SVG plots, a searchable table, failures.

Nothing is fetched when the file is opened: CSS and JS are inline, plots are SVG drawn here, and the pairs
travel as JSON in a ``<script type="application/json">`` rendered by a few lines of vanilla JS.
``report.html#search=WORD`` opens with the table filtered (handy for links and for tests).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

from . import coverage, spares, styles
from .curate import describe as describe_curation
from .dataset import load_tables, read_manifest, resolve_dataset
from .inspect import pair_rows
from .language import label as language_label
from .manifest import Manifest
from .pricing import PRICES_AS_OF, estimate_cost
from .text import describe as describe_cleaning

PALETTE = ("#3b6ea8", "#d9822b", "#3f9b5b", "#b04a5a", "#7d5ba6")
RANK_BUCKETS = (("1", 1, 1), ("2", 2, 2), ("3", 3, 3), ("4-5", 4, 5), ("6-10", 6, 10), (">10", 11, 10**9))


def write_report(target: str | Path, path: str | Path) -> Path:
    """Write the report of a folder or Hub id to ``path``; returns the path."""
    path = Path(path)
    path.write_text(build_report(target), encoding="utf-8")
    return path


def build_report(target: str | Path) -> str:
    """The report of a folder or Hub id as one HTML string."""
    folder = resolve_dataset(target)
    manifest = read_manifest(folder)
    rows = pair_rows(load_tables(folder))
    return render_html(manifest, rows, title=str(target))


def script_json(value) -> str:
    """``value`` as JSON that is safe inside ``<script>``: no ``<`` at all, so no text can close the element
    or open a comment (``</script>``, ``<!--``), and no raw line separators that old parsers choke on."""
    text = json.dumps(value, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_html(manifest: Manifest, rows: list[dict], title: str) -> str:
    """Pure: manifest + pair rows (``inspect.pair_rows``) → HTML."""
    plots = [
        histogram([len(r["question"]) for r in rows], "Question length (characters)", bins=12),
        bar_chart(_top(Counter(r["source"] for r in rows), 15), "Questions per document"),
        bar_chart(_top(Counter(r["source"] for r in _unique_chunks(rows)), 15), "Chunks with questions per document"),
        bar_chart(_page_coverage(manifest, rows), "Pages by number of questions (coverage)",
                  label_fmt="{} question(s)"),
        bar_chart(_top(Counter(_first_words(r["question"]) for r in rows), 15), "First words of questions (diversity)"),
        bar_chart(_top(Counter(language_label(r["language"]) for r in rows), 15), "Questions per language"),
    ]
    for key, name in (("bm25_rank", "BM25"), ("embed_rank", "embedding")):
        ranks = [r[key] for r in rows if r.get(key) is not None]
        if ranks:
            plots.append(bar_chart(_rank_buckets(ranks), f"Rank of the question's own chunk ({name} round trip)"))
    filters = {k: v for k, v in spares.apart(manifest.question_filters)[0].items() if v}
    if filters:
        plots.append(bar_chart(_top(Counter(filters), 20), "Questions dropped by filter"))
    skipped = {k: v for k, v in manifest.skipped_chunks.items() if v}
    if skipped:
        plots.append(bar_chart(_top(Counter(skipped), 20), "Chunks skipped before asking"))
    payload = script_json(table_payload(rows))
    return _PAGE.format(
        title=_e(title), css=CSS, js=_JS, payload=payload,
        summary=summary_html(manifest), plots="\n".join(f'<figure class="plot">{p}</figure>' for p in plots),
        failures=_failures(manifest), coverage=coverage_html(manifest), styles=styles_html(manifest),
    )


def table_payload(rows: list[dict]) -> dict:
    """The table's data: each chunk's text once (a chunk has several questions), each pair pointing at it."""
    index: dict[str, int] = {}
    chunks: list[str] = []
    pairs = []
    for r in rows:
        if r["chunk_id"] not in index:
            index[r["chunk_id"]] = len(chunks)
            chunks.append(r["chunk"])
        pairs.append({"s": r["split"], "q": r["question"], "c": index[r["chunk_id"]], "src": r["source"],
                      "p": r["page"], "id": r["chunk_id"]})
    return {"chunks": chunks, "pairs": pairs}


def bar_chart(items: list[tuple], title: str, *, width: int = 520, label_fmt: str = "{}") -> str:
    """Horizontal bars, one per (label, value), as an SVG string."""
    row_h, label_w, top = 20, 190, 28
    height = top + row_h * max(1, len(items)) + 8
    peak = max((v for _, v in items), default=0) or 1
    parts = [_svg_open(width, height, title), f'<text x="4" y="16" class="t">{_e(title)}</text>']
    if not items:
        parts.append(f'<text x="4" y="{top + 14}" class="l">no data</text>')
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = max(1.0, (width - label_w - 60) * value / peak)
        text = label_fmt.format(label)
        short = text if len(text) <= 28 else text[:27] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" class="l" text-anchor="end"><title>{_e(text)}</title>'
                     f"{_e(short)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                     f'fill="{PALETTE[0]}"><title>{_e(text)}: {value}</title></rect>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" class="v">{value}</text>')
    return "".join(parts) + "</svg>"


def histogram(values: list[float], title: str, *, bins: int = 10, width: int = 520, height: int = 220) -> str:
    """Vertical-bar histogram of ``values`` as an SVG string."""
    parts = [_svg_open(width, height, title), f'<text x="4" y="16" class="t">{_e(title)}</text>']
    if not values:
        return "".join(parts) + '<text x="4" y="44" class="l">no data</text></svg>'
    lo, hi = min(values), max(values)
    step = max(1.0, (hi - lo) / bins)
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / step))] += 1
    peak, left, bottom, plot_h = max(counts), 36, height - 24, height - 60
    bar_w = (width - left - 8) / bins
    for i, n in enumerate(counts):
        h = plot_h * n / peak
        x = left + i * bar_w
        start = lo + i * step
        parts.append(f'<rect x="{x + 1:.1f}" y="{bottom - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                     f'fill="{PALETTE[1]}"><title>{start:.0f}–{start + step:.0f}: {n}</title></rect>')
    parts.append(f'<text x="{left}" y="{height - 6}" class="l">{lo:.0f}</text>')
    parts.append(f'<text x="{width - 8}" y="{height - 6}" class="l" text-anchor="end">{hi:.0f}</text>')
    parts.append(f'<text x="{left - 4}" y="{bottom - plot_h + 10:.0f}" class="l" text-anchor="end">{peak}</text>')
    return "".join(parts) + "</svg>"


def _svg_open(width: int, height: int, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">')


def summary_html(manifest: Manifest) -> str:
    """The numbers row and the one-line description of the run, as HTML (also heads the review page)."""
    c, opts = manifest.counts, manifest.options
    cost = estimate_cost(manifest.model, c.prompt_tokens, c.completion_tokens)
    items = [
        ("documents", c.documents), ("pages", c.pages), ("chunks", c.chunks), ("chunks asked", c.chunks_asked),
        ("train pairs", c.train_pairs), ("eval pairs", c.eval_pairs),
        ("languages", ", ".join(manifest.languages) or "none"),
        ("failed chunks", len(manifest.failed_chunks)),
        ("tokens", f"{c.prompt_tokens:,} + {c.completion_tokens:,}"),
    ]
    if cost is not None:
        items.append(("cost (approx.)", f"${cost:,.4f}"))
    cards = "".join(f'<div class="num"><b>{_e(str(v))}</b><span>{_e(k)}</span></div>' for k, v in items)
    meta = (f"model <code>{_e(manifest.model)}</code> · chunk size {opts.chunk_size} / overlap {opts.chunk_overlap}"
            f" · {opts.questions_per_chunk} question(s) per chunk"
            + (f" (+{opts.spare_questions} spare asked, {spares.apart(manifest.question_filters)[1]:,} left out)"
               if opts.spare_questions else "")
            + f" · created {_e(manifest.created_at)}")
    if opts.answers:
        meta += f" · reference answers, {c.ungrounded_answers} ungrounded"
    if manifest.curation is not None:
        meta += f" · curated: {_e(describe_curation(manifest.curation))}"
    if cost is not None:
        meta += f" · cost from list prices of {PRICES_AS_OF}"
    meta += " · text cleaning: " + _e(describe_cleaning(manifest.cleaning))
    if manifest.ocr_pages:
        meta += f" · {manifest.ocr_pages} page(s) read by OCR"
    return f'<div class="nums">{cards}</div><p class="meta">{meta}</p>'


def styles_html(manifest: Manifest) -> str:
    """The "Query styles" section: per style, asked, kept, split and dropped by filter; none without styles."""
    if not manifest.styles:
        return ""
    head = "".join(f"<th>{_e(h)}</th>" for h in styles.TABLE_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>"
                   for row in styles.table_rows(manifest.styles))
    return (f'<h2>Query styles</h2><p class="meta">--query-styles {_e(manifest.options.query_styles or "")}</p>'
            f'<table id="styles"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>')


def coverage_html(manifest: Manifest) -> str:
    """Pages, chunks asked and skipped, questions kept and share per document, with the cap and floor."""
    head = "".join(f"<th>{_e(h)}</th>" for h in coverage.TABLE_HEADER)
    body = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in row) + "</tr>" for row in coverage.table_rows(manifest))
    low = coverage.warning(manifest)
    note = f'<p class="warn">{_e(low)}</p>' if low else ""
    return (f'<p class="meta">{_e(coverage.describe(manifest))}</p>{note}<table id="coverage"><thead><tr>{head}'
            f"</tr></thead><tbody>{body}</tbody></table>")


def _failures(manifest: Manifest) -> str:
    rows = [f"<tr><td>chunk</td><td>{_e(f.source)} p.{f.page}</td><td>{_e(f.reason)}</td></tr>"
            for f in manifest.failed_chunks]
    rows += [f"<tr><td>file</td><td>{_e(s.path)}</td><td>{_e(s.reason)}</td></tr>" for s in manifest.skipped_files]
    rows += [f"<tr><td>page</td><td>{_e(s.source)} p.{s.page}</td><td>{_e(s.reason)}</td></tr>"
             for s in manifest.skipped_pages]
    if not rows:
        return "<p>No failed chunks, skipped files or pages left out.</p>"
    return ('<table id="failures"><thead><tr><th>what</th><th>where</th><th>reason</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table>")


def _page_coverage(manifest: Manifest, rows: list[dict]) -> list[tuple[int, int]]:
    per_page = Counter((r["source"], r["page"]) for r in rows)
    buckets = Counter(per_page.values())
    pages = sum(d.pages for d in manifest.documents)
    if pages > len(per_page):  # pages that yielded no question at all are the coverage gap worth seeing
        buckets[0] = pages - len(per_page)
    return sorted(buckets.items())


def _unique_chunks(rows: list[dict]) -> list[dict]:
    return list({r["chunk_id"]: r for r in rows}.values())


def _first_words(question: str, n: int = 2) -> str:
    return " ".join(question.split()[:n]).lower() or "(empty)"


def _rank_buckets(ranks: list[int]) -> list[tuple[str, int]]:
    return [(label, sum(lo <= r <= hi for r in ranks)) for label, lo, hi in RANK_BUCKETS]


def _top(counter: Counter, n: int) -> list[tuple[str, int]]:
    items = counter.most_common()
    if len(items) > n:
        items = items[: n - 1] + [(f"({len(items) - n + 1} others)", sum(v for _, v in items[n - 1:]))]
    return [(str(k), v) for k, v in items]


def _e(text: str) -> str:
    return html.escape(text, quote=True)


CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1200px;padding:16px;color:#222}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:24px 0 8px;border-bottom:1px solid #ddd}
.warn{color:#b04a5a}
.nums{display:flex;flex-wrap:wrap;gap:8px}.num{background:#f3f5f8;border-radius:6px;padding:8px 12px;min-width:90px}
.num b{display:block;font-size:18px}.num span{color:#666;font-size:12px}.meta{color:#555}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plot{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:6px}
svg .t{font-weight:600;font-size:13px}svg .l,svg .v{font-size:11px;fill:#333}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #eee;padding:4px 6px;text-align:left;vertical-align:top}
td.c{color:#444;font-size:12px;max-width:560px}#search{width:320px;padding:4px}.pager{margin:8px 0}
#js-errors{color:#b00020;white-space:pre-wrap}
"""

_JS = r"""
(function () {
  var errors = document.getElementById("js-errors");
  window.addEventListener("error", function (e) { errors.textContent += "error: " + e.message + "\n"; });
  var data = JSON.parse(document.getElementById("pairs-data").textContent);
  var chunks = data.chunks, rows = data.pairs;  // each chunk's text once; a pair holds its index
  var input = document.getElementById("search"), body = document.querySelector("#pairs tbody");
  var info = document.getElementById("pager-info"), PAGE = 25, page = 0, shown = rows;
  function cell(text, cls) { var td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
  function render() {
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    page = Math.min(Math.max(page, 0), pages - 1);
    body.textContent = "";
    shown.slice(page * PAGE, page * PAGE + PAGE).forEach(function (r) {
      var tr = document.createElement("tr");
      tr.appendChild(cell(r.s)); tr.appendChild(cell(r.q)); tr.appendChild(cell(r.src + " p." + r.p));
      var c = chunks[r.c];
      tr.appendChild(cell(c.length > 400 ? c.slice(0, 400) + " …" : c, "c"));
      body.appendChild(tr);
    });
    info.textContent = shown.length + " of " + rows.length + " pairs · page " + (page + 1) + " of " + pages;
  }
  function filter() {
    var q = input.value.trim().toLowerCase();
    shown = !q ? rows : rows.filter(function (r) {
      return r.q.toLowerCase().indexOf(q) >= 0 || chunks[r.c].toLowerCase().indexOf(q) >= 0 || String(r.src).toLowerCase().indexOf(q) >= 0;
    });
    page = 0; render();
  }
  input.addEventListener("input", filter);
  document.getElementById("prev").addEventListener("click", function () { page--; render(); });
  document.getElementById("next").addEventListener("click", function () { page++; render(); });
  var m = /search=([^&]*)/.exec(location.hash);
  if (m) input.value = decodeURIComponent(m[1].replace(/\+/g, " "));
  filter();
  document.body.setAttribute("data-ready", "1");
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>synthqa report · {title}</title><style>{css}</style></head>
<body>
<h1>synthqa report · {title}</h1>
<pre id="js-errors"></pre>
<h2>Summary</h2>{summary}
{styles}
<h2>Coverage per document</h2>{coverage}
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Pairs</h2>
<input id="search" type="search" placeholder="search questions, chunks and sources" aria-label="search">
<div class="pager"><button id="prev">‹ prev</button> <span id="pager-info"></span> <button id="next">next ›</button></div>
<table id="pairs"><thead><tr><th>split</th><th>question</th><th>source</th><th>chunk</th></tr></thead><tbody></tbody></table>
<h2>Failures</h2>{failures}
<script type="application/json" id="pairs-data">{payload}</script>
<script>{js}</script>
</body></html>
"""
