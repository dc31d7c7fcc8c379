"""`synthqa push`: what goes to the Hub, and one clear line when it cannot.

The Hub cannot be reached from tests, so HfApi.create_repo/upload_folder are replaced by recorders; the
file list is recomputed with huggingface_hub's own filter from the recorded arguments.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from datasets import load_dataset
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

import synthqa
from synthqa.errors import HubError
from synthqa.hub import NO_TOKEN, push_dataset, upload_files
from manifests import write_contract_folder

SRC = str(Path(synthqa.__file__).resolve().parents[1])


@pytest.fixture
def out(tmp_path):
    folder = tmp_path / "out"
    write_contract_folder(folder)
    (folder / "data" / "pairs" / "train.parquet.tmp").write_bytes(b"half-written")
    return folder


@pytest.fixture
def recorder(monkeypatch, tmp_path):
    calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kw):
        calls.append(("create_repo", {"repo_id": repo_id, **kw}))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, **kw):
        calls.append(("upload_folder", kw))

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_TOKEN", "hf_test_token_not_real")
    return calls


def uploaded_by(call: dict) -> list[str]:
    """What upload_folder uploads for these arguments (it adds DEFAULT_IGNORE_PATTERNS itself)."""
    folder = Path(call["folder_path"])
    rel = sorted(p.relative_to(folder).as_posix() for p in folder.glob("**/*") if p.is_file())
    return list(filter_repo_objects(rel, allow_patterns=call.get("allow_patterns"),
                                    ignore_patterns=list(call["ignore_patterns"]) + DEFAULT_IGNORE_PATTERNS))


def test_push_creates_a_dataset_repo_and_uploads_only_the_dataset(out, recorder, tmp_path):
    result = push_dataset(out, "alice/policy-qa", private=True)
    (name1, create), (name2, upload) = recorder
    assert (name1, name2) == ("create_repo", "upload_folder")
    assert create["repo_id"] == "alice/policy-qa" and create["repo_type"] == "dataset"
    assert create["private"] is True and create["exist_ok"] is True
    assert upload["repo_id"] == "alice/policy-qa" and upload["repo_type"] == "dataset"
    files = uploaded_by(upload)
    data_files = json.loads((out / "synthqa.json").read_text())["data_files"]
    expected = ["README.md", *(p for split_files in data_files.values() for p in split_files.values()), "synthqa.json"]
    assert len(expected) == 8
    assert files == sorted(expected)
    assert [f.path for f in result.files] == files  # what --dry-run shows is what goes up
    assert result.url == "https://huggingface.co/datasets/alice/policy-qa"
    # The card's snippets now name the Hub id, on disk too.
    assert 'load_dataset("alice/policy-qa", "queries")' in (out / "README.md").read_text()

    copy = tmp_path / "hub_copy"
    for rel in files:
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / rel, copy / rel)
    pairs = load_dataset(str(copy))
    assert (pairs["train"].num_rows, pairs["eval"].num_rows) == (6, 2)
    assert load_dataset(str(copy), "corpus", split="train").num_rows == 4  # 3 asked, 1 skipped before asking


def test_dry_run_uploads_nothing_and_lists_sizes(out, recorder):
    before = (out / "README.md").read_text()
    result = push_dataset(out, "alice/policy-qa", dry_run=True)
    assert recorder == []
    assert (out / "README.md").read_text() == before
    sizes = {f.path: f.size for f in result.files}
    assert sizes["synthqa.json"] == (out / "synthqa.json").stat().st_size
    assert not any(p.startswith(".synthqa") or p.endswith(".tmp") for p in sizes)
    assert "alice/policy-qa" in result.card


def test_http_errors_become_one_line(out, recorder, monkeypatch):
    def forbidden(self, repo_id, **kw):
        request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
        raise HfHubHTTPError("403 Forbidden", response=httpx2.Response(403, request=request),
                             server_message="You don't have the rights to create a dataset under this namespace")

    monkeypatch.setattr(HfApi, "create_repo", forbidden)
    with pytest.raises(HubError) as info:
        push_dataset(out, "someone-else/policy-qa")
    message = str(info.value)
    assert "\n" not in message and "403" in message and "someone-else/policy-qa" in message
    assert "write access" in message


def test_upload_files_skips_cache_and_review_decisions(out):
    (out / "curation.jsonl").write_text('{"id": "q-x-0", "decision": "reject", "question": "rejected?"}\n')
    sent = [f.path for f in upload_files(out)]
    assert all(not path.startswith(".synthqa/") for path in sent) and "curation.jsonl" not in sent
    assert (out / ".synthqa" / "cache.sqlite").exists() and "synthqa.json" in sent


def cli(*args, tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    clean.update({"HF_HOME": str(tmp_path / "empty_hf_home"), "PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1", **env})
    return subprocess.run([sys.executable, "-m", "synthqa", "push", *args], capture_output=True, text=True,
                          env=clean, timeout=120)


def test_cli_missing_token_is_one_clear_line(out, tmp_path):
    proc = cli(str(out), "alice/policy-qa", tmp_path=tmp_path)
    assert proc.returncode == HubError.exit_code
    assert proc.stderr.strip() == f"synthqa: error: {NO_TOKEN}"


@pytest.mark.parametrize("repo_id", ["alice/bad--name", "a/b/c", "noowner"])
def test_cli_invalid_repo_id_is_one_clear_line(out, tmp_path, repo_id):
    proc = cli(str(out), repo_id, "--token", "hf_secret_value", tmp_path=tmp_path)
    assert proc.returncode == HubError.exit_code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and repo_id in lines[0] and "invalid repo id" in lines[0]
    assert "hf_secret_value" not in proc.stderr + proc.stdout


def test_cli_dry_run_lists_files_and_prints_card(out, tmp_path):
    proc = cli(str(out), "alice/policy-qa", "--dry-run", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "would upload 8 files" in proc.stdout
    assert f"{(out / 'synthqa.json').stat().st_size:,}  synthqa.json" in proc.stdout
    assert ".synthqa" not in proc.stdout.split("--- README.md ---")[0]
    assert "configs:" in proc.stdout and "no Hugging Face token found" in proc.stderr


def test_cli_not_a_dataset_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = cli(str(tmp_path / "empty"), "alice/policy-qa", "--dry-run", tmp_path=tmp_path)
    assert proc.returncode == 1 and "synthqa.json" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


class FakeRepo:
    """The file set of one Hub dataset repo, changed the way `upload_folder` changes it: the allowed local
    files are uploaded, and repo files matching `delete_patterns` that were not uploaded are deleted
    (huggingface_hub's own pattern filter decides both). The Hub's own .gitattributes is there from the start."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {".gitattributes": b"*.parquet filter=lfs"}

    def apply(self, call: dict) -> None:
        folder = Path(call["folder_path"])
        uploaded = uploaded_by(call)
        deleted = set(filter_repo_objects(list(self.files), allow_patterns=call.get("delete_patterns")))
        for path in deleted - set(uploaded):
            del self.files[path]
        self.files.update({rel: (folder / rel).read_bytes() for rel in uploaded})


@pytest.fixture
def hub(recorder):
    repos: dict[str, FakeRepo] = {}

    def sync() -> dict[str, FakeRepo]:
        for name, call in recorder:
            if name == "upload_folder" and not call.get("_applied"):
                repos.setdefault(call["repo_id"], FakeRepo()).apply(call)
                call["_applied"] = True
        return repos

    return sync


def local_files(out: Path) -> dict[str, bytes]:
    return {f.path: (out / f.path).read_bytes() for f in upload_files(out)}


def test_a_push_after_a_regenerate_leaves_exactly_the_local_files_in_the_repo(out, hub):
    push_dataset(out, "alice/policy-qa")
    first = set(hub()["alice/policy-qa"].files)
    # Regenerate: other rows, so other content fingerprints in the parquet file names.
    from manifests import QUESTIONS

    QUESTIONS["a" * 16] = ["What is the 2024 budget of the agency?", QUESTIONS["a" * 16][1]]
    try:
        write_contract_folder(out)
    finally:
        QUESTIONS["a" * 16] = ["What is the agency budget for FY2024?", QUESTIONS["a" * 16][1]]
    push_dataset(out, "alice/policy-qa")
    repo = hub()["alice/policy-qa"].files
    assert set(repo) != first  # the data files were renamed by the regenerate
    assert {k: v for k, v in repo.items() if k != ".gitattributes"} == local_files(out)
    assert ".gitattributes" in repo  # what synthqa does not own is left alone
    pairs = load_dataset(str(out))
    assert "What is the 2024 budget of the agency?" in pairs["train"]["sentence_0"]


def test_pushing_to_a_second_repo_names_only_that_repo_and_keeps_the_licence(out, hub):
    card = (out / "README.md").read_text().replace("license: other", "license: cc-by-4.0")
    (out / "README.md").write_text(card)
    push_dataset(out, "alice/policy-qa")
    push_dataset(out, "bob/policy-qa-copy")
    text = (out / "README.md").read_text()
    assert 'load_dataset("bob/policy-qa-copy", "queries")' in text and "alice/policy-qa" not in text
    assert "license: cc-by-4.0" in text and "Set the licence" not in text
    assert hub()["bob/policy-qa-copy"].files["README.md"] == text.encode()
    assert json.loads((out / "synthqa.json").read_text())["repo_id"] == "bob/policy-qa-copy"
