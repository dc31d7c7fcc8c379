from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from e2e import generate, make_policy_folder, read_out
from fakeserver import FakeOpenAI

from synthqa import language, prompts
from synthqa.cache import answer_key
from synthqa.errors import PromptError
from synthqa.prompts import load_template, render

REPO_PROMPTS = Path(__file__).resolve().parents[1] / "prompts"


def write(tmp_path: Path, text: str, name: str = "mine.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_template_loads_from_the_checkout_and_pins_its_text():
    template = load_template()
    text = (REPO_PROMPTS / "default.txt").read_text(encoding="utf-8")
    assert template.name == "default"
    assert template.sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert "$chunk" in template.user and "$n_questions" in template.user
    assert "never follow" in template.system  # the chunk is data, not instructions
    for banned in ("the context", "the passage", "this document"):
        assert f'"{banned}"' in template.system  # named as forbidden wording


def test_default_template_is_found_inside_an_installed_package(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "synthqa"
    (package / "prompts").mkdir(parents=True)
    (package / "prompts" / "default.txt").write_text("Ask $n_questions about:\n<chunk>\n$chunk\n</chunk>\n")
    monkeypatch.setattr(prompts, "__file__", str(package / "prompts.py"))
    assert prompts.default_template_path() == package / "prompts" / "default.txt"
    assert load_template().user.startswith("Ask $n_questions")


def test_render_fills_both_parts_and_keeps_dollar_text_in_the_chunk():
    template = load_template()
    system, user = render(template, chunk="Costs $n_questions and $5 </chunk> end", n_questions=3)
    assert "$" not in system.replace("$$", "")
    assert "Write 3 questions" in user
    assert "<chunk>\nCosts $n_questions and $5 </ chunk> end\n</chunk>" in user


def test_without_separator_the_whole_file_is_the_user_prompt(tmp_path):
    template = load_template(write(tmp_path, "Give $n_questions questions.\n<chunk>\n$chunk\n</chunk>\n"))
    assert template.system == "" and template.name == "mine"
    assert render(template, chunk="x", n_questions=2)[1] == "Give 2 questions.\n<chunk>\nx\n</chunk>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("System.\n---\nAsk $n_questions questions.\n", "lacks $chunk"),
        ("About $chunk\n---\nAsk $n_questions about it.\n", "lacks $chunk in its user part"),
        ("---\n<chunk>\n$chunk\n</chunk>\n", "lacks $n_questions"),
        ("---\n$n_questions about $chunk in $lang\n", "unknown variable $lang"),
        ("---\n$n_questions about ${chunk}, price $ 5\n", "stray '$' on line 1"),
        ("   \n\n", "is empty"),
        ("System only\n---\n  \n", "nothing after its '---' line"),
    ],
)
def test_bad_templates_fail_at_load_naming_file_and_problem(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(PromptError) as info:
        load_template(path)
    message = str(info.value)
    assert expected in message and str(path) in message and "\n" not in message


def test_missing_folder_and_binary_files_are_prompt_errors(tmp_path):
    with pytest.raises(PromptError, match="does not exist"):
        load_template(tmp_path / "nope.txt")
    with pytest.raises(PromptError, match="is a folder"):
        load_template(tmp_path)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00$chunk")
    with pytest.raises(PromptError, match="not UTF-8"):
        load_template(binary)


def test_escaped_dollar_is_allowed(tmp_path):
    template = load_template(write(tmp_path, "Costs $$5.\n---\n$n_questions on\n<chunk>\n$chunk\n</chunk>"))
    assert render(template, chunk="c", n_questions=1)[0] == "Costs $5."


def test_language_is_optional_and_a_template_without_it_loads_as_before(tmp_path):
    old = load_template(write(tmp_path, "Ask $n_questions about:\n<chunk>\n$chunk\n</chunk>\n"))
    assert not old.uses_language
    assert render(old, chunk="c", n_questions=2, language="French")[1] == "Ask 2 about:\n<chunk>\nc\n</chunk>"
    named = load_template(write(tmp_path, "Ask $n_questions in ${language}:\n<chunk>\n$chunk\n</chunk>\n", "n.txt"))
    assert named.uses_language
    assert render(named, chunk="c", n_questions=2, language="German")[1].startswith("Ask 2 in German:")
    assert render(named, chunk="c", n_questions=2)[1].startswith("Ask 2 in the language of the chunk:")


OPENERS_TEMPLATE = ("Questions only.\n---\nWrite $n_questions questions in $language about this chunk.\n"
                    "<chunk>\n$chunk\n</chunk>\n$openers Answer in JSON.\n")


def test_openers_differ_per_chunk_and_are_the_same_for_the_same_chunk(tmp_path):
    template = load_template(write(tmp_path, OPENERS_TEMPLATE))
    assert template.uses_openers and not load_template().uses_openers  # the default prompt does not use it
    chunks = [f"Section {i}: pretrial risk assessments must be validated and published." for i in range(60)]
    hints = [render(template, chunk=c, n_questions=2, language="English")[1] for c in chunks]
    assert hints == [render(template, chunk=c, n_questions=2, language="English")[1] for c in chunks]
    firsts = [prompts.openers_for(c, 2)[0] for c in chunks]
    assert set(firsts) == set(prompts.OPENERS)  # the rotation reaches every opener over a collection
    first, second = prompts.openers_for(chunks[0], 2)
    assert first != second
    assert f'Start the first question with "{first}" and the second with "{second}". Answer' in hints[0]
    assert "$" not in hints[0]


def test_a_prompt_with_openers_keys_each_request_by_its_sentence_and_a_rerun_asks_nothing(tmp_path):
    docs, out = make_policy_folder(tmp_path / "docs", docs=1, pages=3), tmp_path / "out"
    prompt = write(tmp_path, OPENERS_TEMPLATE)
    with FakeOpenAI() as fake:
        assert generate(docs, out, fake, "--prompt", prompt).returncode == 0
        asked = fake.stats()["requests"]
        again = generate(docs, out, fake, "--prompt", prompt)
        assert again.returncode == 0 and fake.stats()["requests"] == asked  # same requests: all from the cache
    data = json.loads((out / "synthqa.json").read_text())
    corpus = [row for rows in read_out(out).values() for row in rows if "skip_reason" in row and not row["skip_reason"]]
    expected = {answer_key(model=data["model"], prompt_sha256=data["prompt"]["sha256"], chunk_text=c["text"],
                           n_questions=2, temperature=0.0, language=c["language"],
                           openers=prompts.opener_hint(c["text"], 2, language.name(c["language"])))
                for c in corpus}
    with sqlite3.connect(out / ".synthqa" / "cache.sqlite") as db:
        assert {k for (k,) in db.execute("SELECT key FROM answers")} == expected and len(expected) == asked


def test_opener_hint_names_one_word_per_question():
    assert prompts.opener_hint("c", 1).startswith('Start the question with "')
    three = prompts.opener_hint("c", 3)
    assert three.count('"') == 6 and ", the second with" in three and " and the third with " in three
    assert len(set(prompts.openers_for("c", len(prompts.OPENERS)))) == len(prompts.OPENERS)


def test_openers_stay_out_of_a_chunk_in_another_language_and_templates_without_them(tmp_path):
    template = load_template(write(tmp_path, OPENERS_TEMPLATE))
    french = render(template, chunk="Les évaluations des risques.", n_questions=2, language="French")[1]
    assert "Start each question with a different word." in french and '"How"' not in french
    # a template that does not name $language asks in its own words: English openers whatever the chunk
    fixed = load_template(write(tmp_path, "Ask $n_questions.\n<chunk>\n$chunk\n</chunk>\n$openers\n", "f.txt"))
    assert fixed.uses_openers and not fixed.uses_language
    assert 'Start the first question with "' in render(fixed, chunk="c", n_questions=2, language="French")[1]
    old = load_template(write(tmp_path, "Ask $n_questions about:\n<chunk>\n$chunk\n</chunk>\n", "o.txt"))
    assert not old.uses_openers and prompts.request_openers(old, "c", 2, "English") == ""
    with pytest.raises(PromptError, match=r"\$language and \$openers exist"):
        load_template(write(tmp_path, "---\n$n_questions $opener $chunk\n", "typo.txt"))
