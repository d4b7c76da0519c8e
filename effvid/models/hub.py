"""Model folders on the Hugging Face Hub: `hf-hub:org/name[@revision]` names, and uploads.

    effvid.create_model("hf-hub:org/name", pretrained=True)
    effvid predict VIDEO --checkpoint hf-hub:org/name@v1

A name resolves through huggingface_hub's cache (`snapshot_download` of the folder's files
only): downloaded once, then read from the cache, also offline (`HF_HUB_OFFLINE=1`). Within one
process a name resolves once, so every reader of one command sees the same commit. Private
repositories use the token of `hf auth login` or `HF_TOKEN`.

`push_model_folder` uploads a model folder as one commit (creating the repository if needed).
Every failure (offline and not cached, no such repository or revision, not logged in, the Hub
refusing) is one line (`HubError`). Needs the `hub` extra: pip install 'effvid[hub]'.
"""

import functools
import os
import re
from pathlib import Path
from types import ModuleType

from effvid.errors import EffvidError
from effvid.extras import require
from effvid.version import __version__

HUB_PREFIX = "hf-hub:"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


class HubError(EffvidError, OSError):
    """The Hugging Face Hub (or its cache) cannot give or take a model folder; says why."""


def is_hub_reference(source: object) -> bool:
    """Whether `source` (text or a path) is a `hf-hub:` name."""
    return isinstance(source, str | os.PathLike) and os.fspath(source).startswith(HUB_PREFIX)


def check_repo_id(repo_id: str) -> str:
    """`repo_id` if it has the form 'org/name', else HubError."""
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise HubError(f"{repo_id!r} is not a Hugging Face repository id: write it as org/name")
    return repo_id


def parse_hub_reference(reference: str) -> tuple[str, str | None]:
    """'hf-hub:org/name@v1' -> ('org/name', 'v1'); ('org/name', None) without a revision."""
    repo_id, _, revision = reference.removeprefix(HUB_PREFIX).partition("@")
    check_repo_id(repo_id)
    return repo_id, revision or None


def _hub(module: str = "") -> ModuleType:
    """huggingface_hub (or its submodule `module`), or MissingExtraError naming effvid[hub]."""
    name = f"huggingface_hub.{module}" if module else "huggingface_hub"
    return require(name, "hub", package="huggingface_hub")


def download_model_folder(reference: str) -> Path:
    """The local folder of `hf-hub:org/name[@revision]` in the Hugging Face cache, downloaded if
    it is not there (only the model folder's files)."""
    repo_id, revision = parse_hub_reference(reference)
    return _snapshot(reference, repo_id, revision, str(_hub("constants").HF_HUB_CACHE))


@functools.cache
def _snapshot(reference: str, repo_id: str, revision: str | None, cache: str) -> Path:
    from effvid.models.pretrained import FOLDER_FILES

    hub = _hub()
    try:
        folder = hub.snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=list(FOLDER_FILES),
            library_name="effvid",
            library_version=__version__,
        )
    except Exception as error:
        raise _download_error(error, reference, revision, cache) from None
    return Path(folder)


def _download_error(
    error: Exception, reference: str, revision: str | None, cache: str
) -> Exception:
    """The one-line HubError for a failed download (`error` itself when it is not the Hub's)."""
    errors = _hub("errors")
    login = "log in (hf auth login, or HF_TOKEN) if it is private or gated"
    if isinstance(error, errors.GatedRepoError):
        return HubError(f"{reference} is gated: accept its conditions on the Hub and {login}")
    if isinstance(error, errors.RepositoryNotFoundError):
        return HubError(f"{reference}: no such model repository on the Hugging Face Hub ({login})")
    if isinstance(error, errors.RevisionNotFoundError):
        return HubError(f"{reference}: the repository has no revision {revision!r}")
    if isinstance(error, errors.LocalEntryNotFoundError):
        return HubError(
            f"{reference} is not in the Hugging Face cache ({cache}) and the Hub cannot be "
            "reached (HF_HUB_OFFLINE=1, or no network): download it once while online"
        )
    if isinstance(error, errors.HfHubHTTPError):
        return HubError(f"{reference}: the Hugging Face Hub refused: {_first_line(error)}")
    return error


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def push_model_folder(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload model folder `folder` to the Hub repository `repo_id` ('org/name', created if
    absent, `private` if created now) as one commit on branch `revision` (default: the main
    branch; another is created from it if needed). Returns the commit's URL."""
    from effvid.models.pretrained import FOLDER_FILES, read_model_folder

    check_repo_id(repo_id)
    folder = Path(folder)
    read_model_folder(folder)  # a whole, readable model folder, or nothing is sent
    hub = _hub()
    api = hub.HfApi(library_name="effvid", library_version=__version__)
    operations = [
        hub.CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(folder / name))
        for name in FOLDER_FILES
    ]
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload effvid model folder {folder.name}",
            revision=revision,
        )
    except Exception as error:
        raise _upload_error(error, repo_id) from None
    return commit.commit_url


def _upload_error(error: Exception, repo_id: str) -> Exception:
    """The one-line HubError for a failed upload (`error` itself when it is not the Hub's)."""
    errors = _hub("errors")
    login = (
        "log in to the Hugging Face Hub with a token that may write (hf auth login, or HF_TOKEN)"
    )
    status = getattr(getattr(error, "response", None), "status_code", None)
    if isinstance(error, errors.LocalTokenNotFoundError) or status in (401, 403):
        return HubError(f"cannot push to {repo_id}: {login}")
    if isinstance(error, errors.OfflineModeIsEnabled):
        return HubError(f"cannot push to {repo_id}: HF_HUB_OFFLINE=1 forbids reaching the Hub")
    if isinstance(error, errors.HfHubHTTPError):
        return HubError(f"cannot push to {repo_id}: the Hub refused: {_first_line(error)}")
    if type(error).__module__.split(".")[0] in ("httpx", "httpx2"):
        return HubError(f"cannot push to {repo_id}: the Hub cannot be reached: {error}")
    return error
