"""Share an output folder as a Hugging Face dataset repository.

Only the card, the manifest and the parquet files go up; the answer cache never does. The file list is
computed with huggingface_hub's own pattern filter, so what ``--dry-run`` shows is what ``upload_folder``
uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects, validate_repo_id

from .card import DATASET_REF_PLACEHOLDER
from .dataset import CARD, UPLOAD_IGNORE, data_files, read_manifest
from .errors import DatasetError, HubError

NO_TOKEN = "no Hugging Face token: pass --token, set HF_TOKEN or run `hf auth login`"


@dataclass(frozen=True, slots=True)
class UploadFile:
    """One file that goes to the Hub: its path in the repo and its size in bytes."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class PushResult:
    """What a push did (or, with ``dry_run``, would do)."""

    repo_id: str
    files: tuple[UploadFile, ...]
    card: str
    private: bool
    dry_run: bool
    url: str | None = None  # the dataset page, after a real push
    token_found: bool = True

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def upload_files(out: Path) -> list[UploadFile]:
    """The files ``upload_folder`` would send from ``out``, sorted, cache excluded."""
    out = Path(out)
    relpaths = sorted(p.relative_to(out).as_posix() for p in out.glob("**/*") if p.is_file())
    kept = filter_repo_objects(relpaths, ignore_patterns=UPLOAD_IGNORE + DEFAULT_IGNORE_PATTERNS)
    return [UploadFile(rel, (out / rel).stat().st_size) for rel in kept]


def check_repo_id(repo_id: str) -> None:
    """Raise HubError unless ``repo_id`` is a well-formed ``namespace/name``."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise HubError(f"invalid repo id {repo_id!r}: {err} (use the form 'user-or-org/dataset-name')") from None
    if "/" not in repo_id:
        # Without a namespace the Hub picks the token's user, which surprises people pushing for an org.
        raise HubError(f"invalid repo id {repo_id!r}: name the owner too, e.g. 'your-name/{repo_id}'")


def check_can_push(repo_id: str, token: str | None = None) -> None:
    """Fail now, not after hours of generation, when a later push could not work (bad id, no token)."""
    check_repo_id(repo_id)
    if not (token or get_token()):
        raise HubError(NO_TOKEN)


def push_dataset(out: Path, repo_id: str, *, private: bool = False, token: str | None = None,
                 dry_run: bool = False, api: HfApi | None = None) -> PushResult:
    """Create the dataset repo (if needed) and upload ``out`` to it; with ``dry_run`` only list and report.

    ``token`` None means HF_TOKEN or the saved login. The token is never printed or stored.
    """
    out = Path(out)
    check_repo_id(repo_id)
    _check_folder(out)
    card = _card_for(out, repo_id)
    files = tuple(upload_files(out))
    token_found = bool(token or get_token())
    if dry_run:
        return PushResult(repo_id, files, card, private, dry_run=True, token_found=token_found)
    if not token_found:
        raise HubError(NO_TOKEN)
    if card != (out / CARD).read_text(encoding="utf-8"):
        # Keep the local folder identical to what goes up: the snippets now name the Hub id.
        (out / CARD).write_text(card, encoding="utf-8")
    api = api or HfApi()
    try:
        url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True, token=token)
        api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset", token=token,
                          ignore_patterns=list(UPLOAD_IGNORE),
                          commit_message="Upload synthetic retrieval dataset made with synthqa")
    except HfHubHTTPError as err:
        raise HubError(_http_message(err, repo_id)) from None
    except Exception as err:  # network down, DNS, TLS …: one line whatever the transport says
        first = str(err).splitlines()[0] if str(err) else ""
        raise HubError(f"cannot push to {repo_id}: {type(err).__name__}: {first} (check your connection)") from None
    return PushResult(repo_id, files, card, private, dry_run=False,
                      url=f"https://huggingface.co/datasets/{repo_id}" if url is None else str(url))


def _check_folder(out: Path) -> None:
    if not out.is_dir():
        raise DatasetError(f"{out} is not a folder: give the output folder of `synthqa generate`")
    files = data_files(read_manifest(out))  # raises DatasetError naming the folder
    missing = [rel for rel in [CARD, *(p for split_files in files.values() for p in split_files.values())]
               if not (out / rel).is_file()]
    if missing:
        raise DatasetError(f"{out} lacks {', '.join(missing)}: rerun `synthqa generate` to complete it")


def _card_for(out: Path, repo_id: str) -> str:
    return (out / CARD).read_text(encoding="utf-8").replace(DATASET_REF_PLACEHOLDER, repo_id)


def _http_message(err: HfHubHTTPError, repo_id: str) -> str:
    status = getattr(getattr(err, "response", None), "status_code", None)
    detail = (err.server_message or str(err)).strip().splitlines()
    detail_line = detail[0] if detail else ""
    if status == 401:
        return "the Hub rejected the token (401): pass a valid --token or run `hf auth login` again"
    if status == 403:
        return (f"the token may not write to {repo_id} (403): use a token with write access to that "
                f"namespace ({detail_line})")
    if status == 409:
        return f"{repo_id} exists and conflicts (409): {detail_line}"
    return f"pushing to {repo_id} failed ({status or 'HTTP error'}): {detail_line}"
