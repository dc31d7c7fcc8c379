"""Which language identifier: accuracy on short policy questions, the check synthqa makes, speed, size.

    .venv/bin/python bench/bench_langid.py

Runs every identifier that is installed (py3langid is synthqa's; ``pip install lingua-language-detector
langdetect`` to compare) on ``bench/langid_questions.tsv``: 116 questions of 4 to 20 words in English,
French, German, Spanish, Italian, Portuguese and Dutch, written like an LLM writes them, some with borrowed
terms or a slip into another language. Prints

- top-1 accuracy (the language the identifier names is the question's);
- the check synthqa makes (is question q in language L?) for every question and each of the 7 languages:
  wrongly dropped (q is in L, the check says no) and wrongly kept (q is not in L, the check says yes). For
  py3langid this is synthqa's rule (L gets at least 10 % probability); for the others, L is the top-1;
- the same top-1 accuracy on the chunks of ``corpora/`` (English) and ``bench/texts/`` (fr, de, es);
- milliseconds per question and per chunk, seconds to load, and the installed size.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from synthqa import language  # noqa: E402
from synthqa.chunks import split_pages  # noqa: E402
from synthqa.filters import chunk_skip_reason  # noqa: E402
from synthqa.pdfs import load_pages  # noqa: E402

CHECKED = ("en", "fr", "de", "es", "it", "pt", "nl")


def questions() -> list[tuple[str, str]]:
    rows = []
    for line in (ROOT / "bench" / "langid_questions.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, text = line.split("\t", 1)
            rows.append((code, text.strip()))
    return rows


def chunks() -> list[tuple[str, str]]:
    pages = load_pages([ROOT / "corpora", *sorted((ROOT / "bench" / "texts").glob("policy-*.md"))])
    out = []
    for c in split_pages(pages):
        if chunk_skip_reason(c.text) is None:
            out.append(("en" if c.source.endswith(".pdf") else c.source.split("-")[-1][:2], c.text))
    return out


def identifiers() -> dict[str, tuple[Callable[[str], str], Callable[[str, str], bool], float, str]]:
    """name → (top-1 code of a text, check(text, code), seconds to load, package folder)."""
    found = {}
    t0 = time.perf_counter()
    language.detect("warm up")  # loads the model
    found["py3langid (synthqa)"] = (lambda t: language._model().classify(t)[0], language.in_language,
                                    time.perf_counter() - t0, "py3langid")
    if importlib.util.find_spec("lingua"):
        from lingua import LanguageDetectorBuilder

        for mode in ("high", "low"):
            t0 = time.perf_counter()
            builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
            detector = (builder.with_low_accuracy_mode() if mode == "low" else builder).build()

            def top(text, detector=detector):
                found_language = detector.detect_language_of(text)
                return found_language.iso_code_639_1.name.lower() if found_language else "und"

            found[f"lingua ({mode} accuracy)"] = (top, lambda t, c, top=top: top(t) == c, time.perf_counter() - t0,
                                                  "lingua")
    if importlib.util.find_spec("langdetect"):
        import langdetect

        langdetect.DetectorFactory.seed = 0
        t0 = time.perf_counter()
        langdetect.detect("warm up")
        found["langdetect"] = (langdetect.detect, lambda t, c: langdetect.detect(t) == c, time.perf_counter() - t0,
                               "langdetect")
    return found


def size_mb(package: str) -> float:
    spec = importlib.util.find_spec(package)
    folder = Path(spec.origin).parent
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    qs, cs = questions(), chunks()
    print(f"{len(qs)} questions, {len(cs)} chunks ({sum(c == 'en' for c, _ in cs)} English)")
    print("| identifier | top-1 on questions | wrongly dropped | wrongly kept | top-1 on chunks | ms/question"
          " | ms/chunk | load s | size MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (top, check, load_s, package) in identifiers().items():
        t0 = time.perf_counter()
        top_q = [top(q) for _, q in qs]
        ms_q = (time.perf_counter() - t0) / len(qs) * 1e3
        t0 = time.perf_counter()
        top_c = [top(text) for _, text in cs]
        ms_c = (time.perf_counter() - t0) / len(cs) * 1e3
        in_l = [(code == target, check(q, target)) for code, q in qs for target in CHECKED]
        dropped = sum(truth and not said for truth, said in in_l)
        kept = sum(said and not truth for truth, said in in_l)
        print(f"| {name} | {sum(a == b for a, (b, _) in zip(top_q, qs)) / len(qs):.1%}"
              f" | {dropped} of {sum(t for t, _ in in_l)} | {kept} of {sum(not t for t, _ in in_l)}"
              f" | {sum(a == b for a, (b, _) in zip(top_c, cs)) / len(cs):.1%} | {ms_q:.2f} | {ms_c:.2f}"
              f" | {load_s:.1f} | {size_mb(package):.0f} |", flush=True)
        for (code, q), said in zip(qs, top_q):
            if said != code:
                print(f"    top-1 {said} for {code}: {q}")


if __name__ == "__main__":
    main()
