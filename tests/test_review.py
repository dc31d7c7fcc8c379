"""`synthqa review`: a real server process driven by a real headless Chromium; decisions survive a kill."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import datasets
import pytest

from e2e import cli_env, generate, make_policy_folder, read_out, run_cli
from fakeserver import FakeOpenAI
from synthqa.curate import read_decisions
from synthqa.review import Review


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """A generated dataset with answers (two documents, both splits); tests copy it before deciding."""
    base = tmp_path_factory.mktemp("review")
    docs = make_policy_folder(base / "docs", docs=2, pages=4)
    with FakeOpenAI(ungrounded_substring="Facial recognition") as fake:
        proc = generate(docs, base / "out", fake, "--answers")
    assert proc.returncode == 0, proc.stderr
    return base / "out"


@pytest.fixture
def out(made, tmp_path) -> Path:
    import shutil

    shutil.copytree(made, tmp_path / "out")
    return tmp_path / "out"


class ReviewProcess:
    """`synthqa review OUT --no-browser` in a child process; ``url`` is the one it printed."""

    def __init__(self, out: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "synthqa", "review", str(out), "--no-browser"],
                                     env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)
        first = self.proc.stdout.readline()
        assert first.startswith("reviewing"), first + self.proc.stderr.read()
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://127.0.0.1:") and "?token=" in self.url
        self.base, self.token = self.url.split("/?token=")

    def stop(self, sig=signal.SIGTERM) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # a server that ignored the signal fails the test, and is not left serving
            self.proc.communicate()
            raise
        return self.proc.returncode, err


def choose(browser, select: str, value: str) -> None:
    """Pick ``value`` in the page's ``<select id=select>`` as a person would (a change event follows)."""
    browser.eval(f"(s => {{ s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})"
                 f"(document.getElementById({json.dumps(select)}))")


def status(url: str, data: bytes | None = None, headers: dict | None = None) -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as err:
        return err.code


def test_review_in_chromium_survives_a_killed_server_and_curate_applies_it(browser, out, tmp_path):
    server = ReviewProcess(out)
    try:
        browser.events.clear()
        browser.open(server.url)
        pairs = browser.eval("JSON.parse(document.getElementById('pairs-data').textContent)")
        assert browser.eval("document.querySelectorAll('#pairs tbody tr').length") == min(20, len(pairs))
        # Reject three pairs with the keyboard: r rejects the selected row and moves on to the next.
        rejected = []
        for k in range(3):
            rejected.append(browser.eval("document.querySelector('#pairs tr.sel').dataset.id"))
            assert rejected[-1] == pairs[k]["id"]
            browser.press("r")
            browser.wait(f"document.querySelector('tr[data-id=\"{rejected[-1]}\"]').classList.contains('reject')",
                         "the reject to be saved")
        # Edit the next one: e, type, Enter. A question leaning on "the text" is refused first, not saved.
        edited = browser.eval("document.querySelector('#pairs tr.sel').dataset.id")
        browser.press("e")
        browser.wait("document.activeElement && document.activeElement.id === 'edit-input'", "the edit box")
        browser.eval("document.getElementById('edit-input').value = ''")
        browser.type_text("What does the text say about it?")
        browser.press("Enter")
        browser.wait("document.getElementById('status').className === 'err'", "the refusal")
        assert "refers to 'the context'" in browser.eval("document.getElementById('status').textContent")
        # a question of the pair's own chunk, worded by a person (the filters refuse one about another topic)
        new_question = pairs[3]["g"].replace("What does the policy say about", "Which rules cover")
        browser.eval("document.getElementById('edit-input').value = ''")
        browser.type_text(new_question)
        browser.press("Enter")
        browser.wait(f"document.querySelector('tr[data-id=\"{edited}\"] .text')?.textContent === {json.dumps(new_question)}",
                     "the edit to be saved")
        # Back to the first pair; n jumps over the decided ones to the next flagged undecided pair.
        for _ in range(3):
            browser.press("k")
        decided = {*rejected, edited}
        browser.press("n")
        expected = next(p["id"] for p in pairs[1:] if p["f"] and p["id"] not in decided)
        assert browser.eval("document.querySelector('#pairs tr.sel').dataset.id") == expected
        # Filter by decision, then by document.
        choose(browser, "decision", "reject")
        assert sorted(browser.eval("[...document.querySelectorAll('#pairs tbody tr')].map(t => t.dataset.id)")) == sorted(rejected)
        doc = pairs[0]["src"]
        choose(browser, "decision", "")
        choose(browser, "doc", doc)
        assert browser.eval("document.getElementById('pager-info').textContent").startswith(
            f"{sum(p['src'] == doc for p in pairs)} of {len(pairs)} pairs")
        # The one failed request is the refused edit (HTTP 422); nothing else went wrong in the page.
        assert [e for e in browser.errors() if "422" not in e] == [] and len(browser.errors()) == 1
        assert browser.eval("document.getElementById('js-errors').textContent") == ""

        # Kill the server mid-session: the page says a decision was not saved; the file has every earlier one.
        server.stop(signal.SIGKILL)
        browser.press("a")
        browser.wait("document.getElementById('status').textContent.indexOf('not running') >= 0", "the failure")
        assert {qid: d.decision for qid, d in read_decisions(out).latest.items()} == {
            **dict.fromkeys(rejected, "reject"), edited: "edit"}

        # A new server (new port, new token) shows every decision made before the kill.
        server = ReviewProcess(out)
        browser.events.clear()
        browser.open(server.url)
        shown = browser.eval("Object.fromEntries(JSON.parse(document.getElementById('pairs-data').textContent)"
                             ".filter(r => r.d).map(r => [r.id, [r.d, r.q]]))")
        assert {qid: d for qid, (d, _) in shown.items()} == {**dict.fromkeys(rejected, "reject"), edited: "edit"}
        assert shown[edited][1] == new_question
        assert "3 rejected · 1 edited" in browser.eval("document.getElementById('counts').textContent")
        browser.screenshot(tmp_path / "review.png")

        # Without the token, or with another one, nothing is served or recorded.
        assert status(server.base + "/") == 403
        assert status(server.base + "/?token=" + "x" * len(server.token)) == 403
        post = json.dumps({"id": rejected[0], "decision": "accept"}).encode()
        assert status(server.base + "/api/decision", post, {"Content-Type": "application/json"}) == 403
        assert status(server.base + "/api/decision", post, {"X-Synthqa-Token": "wrong"}) == 403
        assert read_decisions(out).latest[rejected[0]].decision == "reject"
    finally:
        code, err = server.stop()
    assert code == 0 and "4 pair(s) decided" in err and "synthqa curate" in err

    proc = run_cli("curate", out)
    assert proc.returncode == 0, proc.stderr
    queries = {q["id"]: q["text"] for key, rows in read_out(out).items() if key.startswith("queries/") for q in rows}
    assert not set(rejected) & set(queries) and queries[edited] == new_question
    pairs_now = datasets.load_dataset(str(out))
    questions = [q for split in pairs_now.values() for q in split["sentence_0"]]
    assert len(questions) == len(pairs) - 3 and new_question in questions


def test_the_server_refuses_what_it_should(out):
    review = Review(out)
    assert review.flagged >= sum(1 for p in review.pairs.values() if "ungrounded" in p.flags) > 0
    server = ReviewProcess(out)
    try:
        headers = {"X-Synthqa-Token": server.token}
        for body, code in ((b"[1, 2]", 400), (b"not json", 400), (json.dumps({"id": "q-nope-0", "decision": "reject"}).encode(), 404),
                           (json.dumps({"id": next(iter(review.pairs)), "decision": "burn"}).encode(), 400)):
            assert status(server.base + "/api/decision", body, headers) == code
        assert status(server.url.replace("/?", "/elsewhere?")) == 404
        assert status(server.url, headers={"Host": "attacker.example"}) == 403  # DNS rebinding
        assert not (out / "curation.jsonl").exists()
    finally:
        server.stop()
