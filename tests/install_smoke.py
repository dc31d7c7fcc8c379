"""Run by scripts/check_installs.sh inside a fresh virtual environment holding one README install line:
the main job, and the commands that install line promises, work with nothing else installed.

    python tests/install_smoke.py bare|local|eval|ocr|ray WORKDIR

Uses only the standard library beside synthqa itself (the fake OpenAI server is stdlib-only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from fakeserver import FakeOpenAI  # noqa: E402

CORPORA = HERE.parent / "corpora"
BIN = Path(sys.executable).parent


def synthqa(*args: str, env: dict | None = None, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "synthqa"), *map(str, args)], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=1800)
    if proc.returncode != expect:
        sys.exit(f"synthqa {' '.join(map(str, args))} exited {proc.returncode}, expected {expect}:\n"
                 f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    if "Traceback" in proc.stderr:
        sys.exit(f"synthqa {' '.join(map(str, args))} printed a traceback:\n{proc.stderr[-4000:]}")
    return proc


def environment(work: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HF_TOKEN"))}
    env.update(HF_DATASETS_CACHE=str(work / "hf-datasets"), HF_HUB_OFFLINE="1", **extra)
    return env


def check_loads(out: Path) -> None:
    from datasets import load_dataset

    for config in ("default", "queries", "corpus"):
        ds = load_dataset(str(out), config)
        assert "train" in ds and all(len(ds[s]) for s in ds), (config, ds)
    pairs = load_dataset(str(out))
    assert pairs["train"].column_names == ["sentence_0", "sentence_1"], pairs


def generate_on_fake(out: Path, limit: int, env: dict) -> dict:
    """`synthqa generate` on the corpora against a loopback fake endpoint; the folder must load. Returns the
    manifest."""
    with FakeOpenAI() as fake:
        synthqa("generate", CORPORA, "-o", out, "--base-url", fake.base_url, "--limit", limit, "--no-progress",
                env=env)
    check_loads(out)
    return json.loads((out / "synthqa.json").read_text())


def bare(work: Path) -> None:
    env = environment(work, OPENAI_API_KEY="sk-smoke")
    out = work / "out"
    manifest = generate_on_fake(out, 12, env)
    assert manifest["roundtrip"]["embedder"] is None, "the bare install ranked with an embedder it cannot have"
    synthqa("inspect", out, env=env)
    synthqa("report", out, "-o", work / "report.html", env=env)
    synthqa("push", out, "alice/smoke", "--dry-run", env=env)
    hint = synthqa("evaluate", out, env=env, expect=2)
    assert "synthqa[eval]" in hint.stderr, hint.stderr
    offline = synthqa("generate", CORPORA, "-o", work / "no-key", "--limit", "1", env=environment(work),
                      expect=3)
    assert "synthqa[local]" in offline.stderr, offline.stderr
    # A PDF without a text layer: the bare install cannot read it and names the extra that can.
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    (work / "scans").mkdir()
    writer.write(work / "scans" / "scan.pdf")
    with FakeOpenAI() as fake:
        skipped = synthqa("generate", work / "scans", CORPORA, "-o", work / "scan-out", "--base-url", fake.base_url,
                          "--limit", "2", "--no-progress", env=env)
    assert "pip install 'synthqa[ocr]'" in skipped.stderr, skipped.stderr
    with FakeOpenAI() as fake:
        no_ray = synthqa("generate", CORPORA, "-o", work / "no-ray", "--base-url", fake.base_url, "--ray", env=env,
                         expect=2)
    assert "pip install 'synthqa[ray]'" in no_ray.stderr, no_ray.stderr
    query_styles(work, env)
    documents_in_any_language(work, env)


def query_styles(work: Path, env: dict) -> None:
    """The installed package carries every style's prompt file (they are copied into the wheel), and a styled
    dataset loads with its style column."""
    from datasets import load_dataset

    out = work / "styles"
    with FakeOpenAI() as fake:
        synthqa("generate", CORPORA, "-o", out, "--base-url", fake.base_url, "--limit", "6", "--no-progress",
                "--query-styles", "question:1,keyword:1,situation:1", env=env)
    check_loads(out)
    styles = set(load_dataset(str(out), "queries")["train"]["style"])
    assert styles == {"question", "keyword", "situation"}, styles


def documents_in_any_language(work: Path, env: dict) -> None:
    """Word, HTML and Markdown in French, German and Spanish: read, and their languages detected, by the bare
    install (python-docx, BeautifulSoup, markdownify and py3langid's model are core dependencies)."""
    import docx

    docs = work / "documents"
    docs.mkdir()
    texts = HERE.parent / "bench" / "texts"
    (docs / "politica.md").write_text((texts / "policy-es.md").read_text(encoding="utf-8"), encoding="utf-8")
    german = (texts / "policy-de.md").read_text(encoding="utf-8").split("\n\n")
    (docs / "richtlinie.html").write_text("<nav>Start</nav><main>" + "".join(f"<p>{p}</p>" for p in german)
                                          + "</main>", encoding="utf-8")
    word = docx.Document()
    for paragraph in (texts / "policy-fr.md").read_text(encoding="utf-8").split("\n\n"):
        word.add_paragraph(paragraph.lstrip("# "))
    word.save(docs / "politique.docx")
    out = work / "out-documents"
    with FakeOpenAI() as fake:
        synthqa("generate", docs, "-o", out, "--base-url", fake.base_url, "--no-progress", env=env)
    check_loads(out)
    manifest = json.loads((out / "synthqa.json").read_text())
    assert sorted(d["source"] for d in manifest["documents"]) == ["politica.md", "politique.docx", "richtlinie.html"]
    assert sorted(manifest["languages"]) == ["de", "es", "fr"], manifest["languages"]


def local(work: Path) -> None:
    env = environment(work)
    out = work / "out"
    proc = synthqa("generate", CORPORA, "-o", out, "--limit", "2", "--no-progress", env=env)
    assert "embedded local model" in proc.stderr, proc.stderr
    check_loads(out)


def eval_(work: Path) -> None:
    env = environment(work, OPENAI_API_KEY="sk-smoke")
    out = work / "out"
    manifest = generate_on_fake(out, 40, env)
    assert manifest["roundtrip"]["embedder"], "the eval extra is installed: round-trip ranks use MiniLM"
    table = synthqa("evaluate", out, env=env)
    assert "ndcg@10" in table.stdout, table.stdout


def ray(work: Path) -> None:
    """`generate --ray` on a local Ray instance writes the dataset a run without it writes (the data files are
    named by their content hash)."""
    env = environment(work, OPENAI_API_KEY="sk-smoke")
    on_ray, plain = work / "on-ray", work / "plain"
    with FakeOpenAI() as fake:
        proc = synthqa("generate", CORPORA, "-o", on_ray, "--base-url", fake.base_url, "--limit", "12", "--ray",
                       "--no-progress", env=env)
        synthqa("generate", CORPORA, "-o", plain, "--base-url", fake.base_url, "--limit", "12", "--no-progress",
                env=env)
    assert "asked on Ray: 12 chunks" in proc.stderr, proc.stderr
    check_loads(on_ray)
    files = [json.loads((out / "synthqa.json").read_text())["data_files"] for out in (on_ray, plain)]
    assert files[0] == files[1], files


def ocr(work: Path) -> None:
    """A page of the corpora rasterised into an image-only PDF (with the extra's own pdfium) is read by OCR."""
    import pyarrow.parquet as pq
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(CORPORA / "NIST.AI.600-1.pdf"))
    page = source[10]
    width, height = page.get_size()
    scan = pdfium.PdfDocument.new()
    image = pdfium.PdfImage.new(scan)
    image.set_bitmap(page.render(scale=200 / 72, grayscale=True))
    image.set_matrix(pdfium.PdfMatrix().scale(width, height))
    new = scan.new_page(width, height)
    new.insert_obj(image)
    new.gen_content()
    (work / "scans").mkdir()
    scan.save(str(work / "scans" / "scan.pdf"))
    env = environment(work, OPENAI_API_KEY="sk-smoke")
    out = work / "out"
    with FakeOpenAI() as fake:
        proc = synthqa("generate", work / "scans", "-o", out, "--base-url", fake.base_url, "--no-progress", env=env)
    assert "scan.pdf: OCR read 1 page(s) without a text layer" in proc.stderr, proc.stderr
    corpus = [row for path in (out / "data" / "corpus").glob("*.parquet") for row in pq.read_table(path).to_pylist()]
    assert corpus and all(row["ocr"] for row in corpus), corpus
    assert "Text-to-image models" in " ".join(row["text"] for row in corpus), corpus


if __name__ == "__main__":
    mode, workdir = sys.argv[1], Path(sys.argv[2])
    workdir.mkdir(parents=True, exist_ok=True)
    {"bare": bare, "local": local, "eval": eval_, "ocr": ocr, "ray": ray}[mode](workdir)
    print(f"install smoke test '{mode}': ok")
