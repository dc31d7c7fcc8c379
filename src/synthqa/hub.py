"""Share an output folder as a Hugging Face dataset repository, and a fine-tuned model as a model repository.

Only the card, the manifest and the parquet files go up; the answer cache never does. The file list is
computed with huggingface_hub's own pattern filter, so what ``--dry-run`` shows is what ``upload_folder``
uploads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from huggingface_hub import DatasetCard, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects, validate_repo_id

from .card import render_card
from .dataset import CARD, UPLOAD_IGNORE, read_manifest, write_card, write_manifest
from .errors import DatasetError, HubError
from .manifest import Manifest

# Files in the repo that a push may delete when it does not upload them again: synthqa's own data folder, so
# parquet files of an earlier push (their names carry a content fingerprint) do not linger beside the new ones.
DELETE_PATTERNS = ("data/**",)
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
        raise HubError(f"invalid repo id {repo_id!r}: {err} (use the form 'user-or-org/name')") from None
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

    The card is rendered again for ``repo_id`` (its snippets name it; a licence or pretty name set in the
    card survives), and data files of earlier pushes that the card no longer names are deleted in the same
    commit, so the repo holds exactly the local files. ``token`` None means HF_TOKEN or the saved login;
    the token is never printed or stored.
    """
    out = Path(out)
    check_repo_id(repo_id)
    manifest = _check_folder(out)
    card = card_for(out, manifest, repo_id)
    token_found = bool(token or get_token())
    if dry_run:
        return PushResult(repo_id, tuple(upload_files(out)), card, private, dry_run=True, token_found=token_found)
    if not token_found:
        raise HubError(NO_TOKEN)
    # Keep the local folder identical to what goes up: the card's snippets and the manifest name the Hub id.
    write_card(out, card, manifest.data_files)
    write_manifest(out, replace(manifest, repo_id=repo_id))
    files = tuple(upload_files(out))
    url = _upload(api or HfApi(), out, repo_id, "dataset", private, token,
                  ignore_patterns=list(UPLOAD_IGNORE), delete_patterns=list(DELETE_PATTERNS),
                  commit_message="Upload synthetic retrieval dataset made with synthqa")
    return PushResult(repo_id, files, card, private, dry_run=False, url=url)


def push_model(folder: Path, repo_id: str, *, private: bool = False, token: str | None = None,
               api: HfApi | None = None) -> str:
    """Create the model repo (if needed) and upload a fine-tuned model folder to it; returns the model's
    page. Same token rules as ``push_dataset``; the token is never printed or stored."""
    check_can_push(repo_id, token)
    return _upload(api or HfApi(), Path(folder), repo_id, "model", private, token,
                   commit_message="Upload embedding model fine-tuned with synthqa")


def _upload(api: HfApi, folder: Path, repo_id: str, repo_type: str, private: bool, token: str | None,
            **upload_kwargs) -> str:
    """``create_repo`` then ``upload_folder``; every failure is one HubError line. Returns the repo's page."""
    try:
        url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, token=token,
                          **upload_kwargs)
    except HfHubHTTPError as err:
        raise HubError(_http_message(err, repo_id)) from None
    except Exception as err:  # network down, DNS, TLS …: one line whatever the transport says
        first = str(err).splitlines()[0] if str(err) else ""
        raise HubError(f"cannot push to {repo_id}: {type(err).__name__}: {first} (check your connection)") from None
    prefix = "datasets/" if repo_type == "dataset" else ""
    return f"https://huggingface.co/{prefix}{repo_id}" if url is None else str(url)


def card_for(out: Path, manifest: Manifest, repo_id: str | None) -> str:
    """The card of ``out`` rendered for ``repo_id`` (None: not pushed yet), keeping the licence and pretty name
    set in its YAML."""
    try:
        data = DatasetCard.load(out / CARD).data
    except Exception:  # noqa: BLE001 — an unreadable card is simply rendered anew
        data = None
    license = getattr(data, "license", None)
    pretty_name = getattr(data, "pretty_name", None)
    return render_card(manifest, repo_id=repo_id, license=license if isinstance(license, str) else None,
                       pretty_name=pretty_name if isinstance(pretty_name, str) else None)


def _check_folder(out: Path) -> Manifest:
    if not out.is_dir():
        raise DatasetError(f"{out} is not a folder: give the output folder of `synthqa generate`")
    manifest = read_manifest(out)  # raises DatasetError naming the folder
    files = [p for split_files in manifest.data_files.values() for p in split_files.values()]
    missing = [rel for rel in [CARD, *files] if not (out / rel).is_file()]
    if missing:
        raise DatasetError(f"{out} lacks {', '.join(missing)}: rerun `synthqa generate` to complete it")
    return manifest


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
