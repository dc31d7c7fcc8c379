"""`synthqa report`: one self-contained HTML file, checked in a real headless Chromium over CDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import synthqa
from manifests import make_manifest, write_contract_folder
from synthqa.report import bar_chart, build_report, histogram, render_html

SRC = str(Path(synthqa.__file__).resolve().parents[1])


def rows_for(n: int) -> list[dict]:
    return [{"split": "eval" if i % 5 == 0 else "train", "id": f"q-{i:016x}-0", "question": f"What rule {i} applies?",
             "chunk_id": f"{i // 2:016x}", "chunk": f"Rule {i} says agencies act. </script><!-- <b>x</b>",
             "language": "en", "source": f"doc{i % 3}.pdf", "page": i % 4 + 1, "bm25_rank": i % 12 + 1,
             "embed_rank": None}
            for i in range(n)]


def test_html_is_self_contained_and_escapes_script_breakers():
    text = render_html(make_manifest(), rows_for(60), title="t<&>")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<link" not in text and "src=" not in text
    data = text.split('<script type="application/json" id="pairs-data">')[1].split("</script>")[0]
    assert "<" not in data  # no "</script>", no "<!--": nothing a chunk holds can end the element early
    payload = json.loads(data)
    assert payload["chunks"][payload["pairs"][0]["c"]].endswith("</script><!-- <b>x</b>")
    assert len(payload["chunks"]) == 30 and len(payload["pairs"]) == 60  # two questions a chunk: each text once
    assert "t&lt;&amp;&gt;" in text


def test_svg_helpers_scale_to_the_data():
    svg = bar_chart([("a", 10), ("b", 5)], "T")
    widths = [float(part.split('"')[0]) for part in svg.split('<rect x="190" y="')[1:] for part in
              [part.split('width="')[1]]]
    assert widths[0] == pytest.approx(2 * widths[1])
    hist = histogram([1, 1, 1, 10], "H", bins=3)
    assert hist.count("<rect") == 3 and "no data" in histogram([], "H")


def test_report_in_chromium(browser, tmp_path):
    out = tmp_path / "out"
    write_contract_folder(out)
    report = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "synthqa", "report", str(out), "-o", str(report)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    browser.events.clear()
    browser.open(report.as_uri())
    assert browser.errors() == []
    assert browser.eval("document.getElementById('js-errors').textContent") == ""
    sizes = browser.eval("[...document.querySelectorAll('figure.plot svg')].map(s => {"
                         "const r = s.getBoundingClientRect(); return [r.width, r.height, s.querySelectorAll('rect').length]})")
    assert len(sizes) >= 7  # length, per document ×2, per page, first words, bm25, filters, skipped
    assert all(w > 100 and h > 40 and n >= 1 for w, h, n in sizes), sizes
    assert browser.eval("document.querySelectorAll('#pairs tbody tr').length") == 8
    assert browser.eval("document.querySelectorAll('#failures tbody tr').length") == 3  # chunk, file, page
    # Typing into the search box filters the table.
    browser.eval("const i = document.getElementById('search'); i.value = 'TRAVEL';"
                 "i.dispatchEvent(new Event('input'))")
    cells = browser.eval("[...document.querySelectorAll('#pairs tbody tr td:nth-child(2)')].map(td => td.textContent)")
    assert sorted(cells) == ["Do travel expenses need approval?", "Who approves travel expenses?"]
    shot = browser.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def test_hash_search_and_pagination_in_chromium(browser, tmp_path):
    report = tmp_path / "big.html"
    report.write_text(render_html(make_manifest(), rows_for(120), title="big"), encoding="utf-8")
    browser.events.clear()
    browser.open(report.as_uri() + "#search=rule%2011")
    assert browser.errors() == []
    # "rule 11" matches questions 11 and 110-119 (chunk text "Rule 11…" too): 11 rows.
    assert browser.eval("document.querySelectorAll('#pairs tbody tr').length") == 11
    browser.open(report.as_uri())
    assert browser.eval("document.querySelectorAll('#pairs tbody tr').length") == 25
    browser.eval("document.getElementById('next').click()")
    assert "page 2 of 5" in browser.eval("document.getElementById('pager-info').textContent")
    # The chunk's "</script><b>x</b>" is shown as text, not markup.
    assert browser.eval("document.querySelectorAll('#pairs tbody b').length") == 0


def test_report_of_a_folder_without_manifest_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "synthqa", "report", str(tmp_path / "empty"), "-o",
                           str(tmp_path / "r.html")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=120)
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "synthqa.json" in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_build_report_counts_match_the_folder(tmp_path):
    out = tmp_path / "out"
    write_contract_folder(out)
    text = build_report(out)
    assert "<b>6</b><span>train pairs</span>" in text and "<b>2</b><span>eval pairs</span>" in text
    assert "unparseable answer after 3 attempts" in text and "scan.pdf" in text
    assert "text cleaning: 12 characters normalised" in text and "1 page(s) read by OCR" in text
