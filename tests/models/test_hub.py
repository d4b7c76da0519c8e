"""`hf-hub:` names resolve through huggingface_hub's cache (offline here), and uploads make the
commit a model folder needs. No network: the cache is laid out as huggingface_hub lays it out
(proved by its own `scan_cache_dir` reading it back), and the upload's Hub calls are replaced by
recorders."""

import hashlib
import sys
from pathlib import Path
from typing import ClassVar

import huggingface_hub
import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.file_download import repo_folder_name

import effvid
from effvid.cli import main
from effvid.errors import MissingExtraError
from effvid.models import hub
from effvid.models.hub import HubError, push_model_folder
from effvid.models.pretrained import FOLDER_FILES


def cache_repository(cache: Path, repo_id: str, folder: Path, revision: str = "main") -> str:
    """Lay `folder`'s files out in the Hugging Face cache `cache` as a download of `repo_id` at
    `revision` leaves them: content-addressed blobs, a snapshot of links to them named by the
    commit, and the ref naming the commit. Returns the commit."""
    storage = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    commit = hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
    snapshot = storage / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (storage / "blobs").mkdir(exist_ok=True)
    for name in FOLDER_FILES:
        content = (folder / name).read_bytes()
        blob = hashlib.sha256(content).hexdigest()
        (storage / "blobs" / blob).write_bytes(content)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob))
    (storage / "refs").mkdir(exist_ok=True)
    (storage / "refs" / revision).write_text(commit)
    return commit


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, with the Hub unreachable (HF_HUB_OFFLINE=1)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    hub._snapshot.cache_clear()
    yield cache
    hub._snapshot.cache_clear()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(model, its folder) of a 3-class vmf_xxs."""
    folder = tmp_path_factory.mktemp("saved") / "model"
    model = effvid.create_model("vmf_xxs", num_classes=3).eval()
    model.save_pretrained(folder, class_names=["jump", "run", "swim"])
    return model, folder


def test_a_hub_name_loads_from_the_cache_offline(offline_cache, saved, monkeypatch):
    model, folder = saved
    asked = []
    download = huggingface_hub.snapshot_download

    def recorded(*args, **kwargs):
        asked.append((args, kwargs))
        return download(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", recorded)
    commit = cache_repository(offline_cache, "effvid-org/tiny", folder)
    scanned = huggingface_hub.scan_cache_dir(offline_cache)
    (repository,) = scanned.repos
    assert repository.repo_id == "effvid-org/tiny" and not scanned.warnings
    (revision,) = repository.revisions
    assert revision.commit_hash == commit and revision.refs == {"main"}
    assert {file.file_name for file in revision.files} == set(FOLDER_FILES)

    loaded = effvid.create_model("hf-hub:effvid-org/tiny", pretrained=True)
    assert loaded.class_names == ["jump", "run", "swim"] and not loaded.training
    (args, options), *again = asked  # resolved once per process
    assert args == ("effvid-org/tiny",) and not again
    assert options["revision"] is None and options["allow_patterns"] == list(FOLDER_FILES)
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(clip), model(clip))


def test_a_revision_names_its_ref(offline_cache, saved):
    _, folder = saved
    cache_repository(offline_cache, "effvid-org/tiny", folder, revision="v1")
    assert effvid.create_model("hf-hub:effvid-org/tiny@v1", pretrained=True).num_classes == 3
    with pytest.raises(HubError, match="not in the Hugging Face cache"):
        effvid.create_model("hf-hub:effvid-org/tiny", pretrained=True)  # main was never cached


def test_predict_takes_a_hub_name(offline_cache, saved, tiny_videos, capsys):
    _, folder = saved
    cache_repository(offline_cache, "effvid-org/tiny", folder)
    video = tiny_videos / "videos" / "test" / "00000.mp4"
    args = ["predict", str(video), "--json", "--workers", "0", "--top-k", "3"]
    assert main([*args, "--checkpoint", "hf-hub:effvid-org/tiny"]) == 0
    from_hub = capsys.readouterr().out
    assert main([*args, "--checkpoint", str(folder)]) == 0
    assert from_hub == capsys.readouterr().out


def test_a_name_offline_and_not_cached_is_one_line(offline_cache, capsys):
    code = main(["predict", "v.mp4", "--checkpoint", "hf-hub:effvid-org/absent"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1
    assert "hf-hub:effvid-org/absent is not in the Hugging Face cache" in error
    assert "HF_HUB_OFFLINE=1" in error


def test_a_malformed_hub_name_is_one_line():
    with pytest.raises(HubError, match="not a Hugging Face repository id: write it as org/name"):
        effvid.create_model("hf-hub:just-a-name", pretrained=True)


def _http_error(kind, status):
    import httpx

    request = httpx.Request("GET", "https://huggingface.co/api/models/effvid-org/absent")
    return kind("404 Client Error.\nRepository Not Found",
                response=httpx.Response(status, request=request))  # fmt: skip


def test_a_repository_the_hub_does_not_know_is_one_line(monkeypatch):
    def snapshot_download(*args, **kwargs):
        raise _http_error(huggingface_hub.errors.RepositoryNotFoundError, 404)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    hub._snapshot.cache_clear()
    with pytest.raises(HubError) as error:
        effvid.create_model("hf-hub:effvid-org/absent", pretrained=True)
    assert "no such model repository on the Hugging Face Hub" in str(error.value)
    assert "\n" not in str(error.value)


class RecordingApi:
    """Stands in for HfApi: records what effvid asks the Hub to do."""

    calls: ClassVar[list] = []

    def __init__(self, **kwargs):
        self.calls.append(("HfApi", kwargs))

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def create_commit(self, repo_id, operations, **kwargs):
        operations = list(operations)
        assert all(isinstance(op, huggingface_hub.CommitOperationAdd) for op in operations)
        sent = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes() for op in operations}
        self.calls.append(("create_commit", repo_id, sent, kwargs))
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/abc",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc",
        )


@pytest.fixture
def recorded(monkeypatch):
    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi.calls


def test_push_commits_the_three_files_of_the_folder(recorded, saved):
    _, folder = saved
    url = push_model_folder(folder, "effvid-org/tiny", private=True, commit_message="v1")
    assert url == "https://huggingface.co/effvid-org/tiny/commit/abc"
    assert recorded[1] == ("create_repo", "effvid-org/tiny", {"private": True, "exist_ok": True})
    _, repo_id, sent, options = recorded[2]
    assert repo_id == "effvid-org/tiny" and options == {"commit_message": "v1", "revision": None}
    assert sent == {name: (folder / name).read_bytes() for name in FOLDER_FILES}


def test_push_to_hub_of_a_run_checkpoint_writes_the_folder_first(recorded, tmp_path, capsys):
    from tests.conftest import write_checkpoint

    checkpoint = write_checkpoint(tmp_path / "best.pth", ["a", "b"], causal=False)
    assert main(["push-to-hub", str(checkpoint), "effvid-org/tiny", "--branch", "dev"]) == 0
    assert "use it as --checkpoint hf-hub:effvid-org/tiny" in capsys.readouterr().out
    assert recorded[2] == ("create_branch", "effvid-org/tiny", {"branch": "dev", "exist_ok": True})
    _, _, sent, options = recorded[3]
    assert options["revision"] == "dev" and set(sent) == set(FOLDER_FILES)
    assert b'create_model("hf-hub:effvid-org/tiny", pretrained=True)' in sent["README.md"]
    assert b'"class_names": [\n    "a",\n    "b"\n  ]' in sent["config.json"]


def test_push_not_logged_in_is_one_line(monkeypatch, saved):
    class NoToken(RecordingApi):
        def create_repo(self, repo_id, **kwargs):
            raise huggingface_hub.errors.LocalTokenNotFoundError("Token is required")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoToken)
    with pytest.raises(HubError) as error:
        push_model_folder(saved[1], "effvid-org/tiny")
    assert "log in to the Hugging Face Hub" in str(error.value) and "\n" not in str(error.value)


def test_push_refuses_what_is_not_a_whole_model_folder(recorded, tmp_path):
    with pytest.raises(effvid.CheckpointError, match="no model folder at"):
        push_model_folder(tmp_path / "absent", "effvid-org/tiny")
    with pytest.raises(HubError, match="write it as org/name"):
        push_model_folder(tmp_path, "no-slash")
    assert recorded == []


def test_without_huggingface_hub_the_error_names_the_extra(monkeypatch, offline_cache):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(MissingExtraError, match=r"effvid\[hub\]"):
        effvid.create_model("hf-hub:effvid-org/tiny", pretrained=True)
