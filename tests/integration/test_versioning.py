"""The git+DVC data repository, for real: init, track + push, read old versions, dvc repro train."""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from modelwatch.errors import VersioningError
from modelwatch.stores import versioning
from modelwatch.stores.versioning import DataVersion
from modelwatch.training import fit

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "data" / "demo" / "bike_sharing" / "hour.csv"
WINDOW = "data/windows/train.csv"

# dvc 3.67 itself (dvc/repo/trie.py, graph.py) trips this pygtrie deprecation; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:_NoneStep.value will soon:DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def _one_openmp_thread():
    """The train stage's HistGradientBoosting spins OpenMP threads; on a shared 2-core box that
    oversubscribes the CPU (one stage run: 6 s with 1 thread, 2 min with the default)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        yield


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def write_params(folder: Path) -> Path:
    """The shipped params, with the home in folder and a smaller model so the stage runs fast."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["project"]["home"] = str(folder / "home")
    raw["training"]["hyperparameters"]["max_iter"] = 50
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def new_repo(base: Path) -> tuple[Path, Path, Path]:
    params = write_params(base)
    root, remote = base / "repo", base / "remote"
    assert versioning.init_data_repo(root, remote, params) is True
    return root, remote, params


def remote_object(remote: Path, md5: str) -> Path:
    return remote / "files" / "md5" / md5[:2] / md5[2:]


def edit_params(root: Path, section: str, key: str, value) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw[section][key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))


# ---------------------------------------------------------------- init, track, read_version


def test_init_creates_git_dvc_and_local_remote(tmp_path):
    from dvc.repo import Repo

    root, remote, params = new_repo(tmp_path)
    assert (root / ".git").is_dir() and (root / ".dvc").is_dir() and remote.is_dir()
    with Repo(str(root)) as repo:
        assert repo.config["core"]["remote"] == "local"
        assert repo.config["remote"]["local"]["url"] == str(remote)
    assert (root / "params.yaml").read_text() == versioning.stage_params(params)
    assert (root / "dvc.yaml").read_bytes() == (ROOT / "dvc.yaml").read_bytes()
    assert git(root, "rev-list", "--count", "HEAD") == "1"
    assert git(root, "status", "--porcelain") == ""
    assert sorted(p.name for p in (root / "data").iterdir()) == [
        "batches",
        "labels",
        "predictions",
        "quarantine",
        "reference",
        "windows",
    ]


def test_init_again_keeps_repo_and_syncs_params(tmp_path):
    root, remote, params = new_repo(tmp_path)
    head = versioning.head(root)
    params.write_text(params.read_text().replace("seed: 0", "seed: 7"))
    assert versioning.init_data_repo(root, remote, params) is False
    assert versioning.head(root) == head
    assert yaml.safe_load((root / "params.yaml").read_text())["training"]["seed"] == 7


def test_the_data_repo_params_hold_every_stage_key_and_no_alert_url(tmp_path):
    """The user's file leaves training.validation out and names a webhook with a token: the
    data repository's params.yaml has the default filled in (dvc repro needs every params
    dependency) and neither the URL nor its token."""
    params = write_params(tmp_path)
    raw = yaml.safe_load(params.read_text())
    raw["training"].pop("validation", None)
    raw["alerts"] = {"webhooks": [{"url": "https://hooks.example/services/T0/B0/s3cr3t-t0ken"}]}
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    root = tmp_path / "repo"
    versioning.init_data_repo(root, tmp_path / "remote", params)
    text = (root / "params.yaml").read_text()
    assert "s3cr3t-t0ken" not in text and "hooks.example" not in text
    written = yaml.safe_load(text)
    assert "alerts" not in written
    assert written["training"]["validation"] == "auto"
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]["train"]["params"]
    for key in stages:
        section, _, name = key.partition(".")
        assert name in written[section], key
    assert "s3cr3t-t0ken" not in git(root, "log", "-p", "--all")


def test_track_writes_dvc_file_pushes_and_returns_md5(tmp_path):
    """Reference: hashlib.md5 (DVC 3 hashes file bytes)."""
    root, remote, _ = new_repo(tmp_path)
    rng = np.random.default_rng(11)
    csv = root / "data" / "batches" / "b1.csv"
    pd.DataFrame({"instant": np.arange(50), "temp": rng.uniform(0, 1, 50)}).to_csv(csv, index=False)
    content = csv.read_bytes()
    md5 = hashlib.md5(content).hexdigest()

    versions = versioning.track(root, [csv], "add b1", tag="b1")

    sha = git(root, "rev-parse", "HEAD")
    assert versions == [DataVersion("data/batches/b1.csv", md5, sha)]
    dvc_file = yaml.safe_load((root / "data" / "batches" / "b1.csv.dvc").read_text())
    assert dvc_file["outs"][0]["md5"] == md5
    assert remote_object(remote, md5).read_bytes() == content  # pushed
    assert git(root, "rev-parse", "b1^{commit}") == sha  # tagged
    assert git(root, "status", "--porcelain") == ""  # committed
    assert git(root, "ls-files", "data/batches").splitlines() == [
        "data/batches/.gitignore",
        "data/batches/b1.csv.dvc",
    ]
    assert csv.read_bytes() == content


def test_track_writes_what_dvc_add_writes_and_dvc_sees_it_in_sync(tmp_path):
    """Reference: DVC's own `Repo.add` + `Repo.push` of the same bytes in a second repository
    (track skips their whole-repo index); then `dvc status` and `dvc status --cloud` agree."""
    from dvc.repo import Repo

    ours, _, _ = new_repo(tmp_path / "ours")
    theirs, their_remote, _ = new_repo(tmp_path / "theirs")
    frame = pd.DataFrame({"instant": np.arange(30), "cnt": np.arange(30) * 3})
    for root in (ours, theirs):
        frame.to_csv(root / "data" / "labels" / "l1.csv", index=False)
    versioning.track(ours, [ours / "data" / "labels" / "l1.csv"], "add l1")
    cwd = os.getcwd()
    os.chdir(theirs)
    try:
        repo = Repo(str(theirs))
        repo.add(["data/labels/l1.csv"])
        repo.push(targets=["data/labels/l1.csv"])
        repo.close()
    finally:
        os.chdir(cwd)

    for name in ("l1.csv.dvc", ".gitignore"):
        mine = (ours / "data" / "labels" / name).read_text()
        assert mine == (theirs / "data" / "labels" / name).read_text(), name
    md5 = versioning.dvc_md5(ours, "data/labels/l1.csv")
    assert remote_object(their_remote, md5).exists()
    assert remote_object(tmp_path / "ours" / "remote", md5).exists()
    os.chdir(ours)
    try:
        repo = Repo(str(ours))
        assert (
            repo.status(targets=["data/labels/l1.csv"]) == {}
        )  # workspace, .dvc file and cache agree
        assert (
            repo.status(targets=["data/labels/l1.csv"], cloud=True) == {}
        )  # and the remote holds the object
        repo.close()
    finally:
        os.chdir(cwd)


def test_track_rejects_a_file_outside_the_repo(tmp_path):
    root, _, _ = new_repo(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("a\n1\n")
    message = f"{outside}: not inside the data repository {root}"
    with pytest.raises(VersioningError, match=f"^{re.escape(message)}$"):
        versioning.track(root, [outside], "nope")
    assert outside.read_text() == "a\n1\n"
    assert git(root, "rev-list", "--count", "HEAD") == "1"


def test_read_version_returns_original_bytes(tmp_path):
    root, remote, _ = new_repo(tmp_path)
    rng = np.random.default_rng(12)
    rel = "data/reference/reference.csv"
    path = root / rel
    pd.DataFrame({"x": rng.normal(size=40)}).to_csv(path, index=False)
    original = path.read_bytes()
    [v1] = versioning.track(root, [path], "v1", tag="v1")
    pd.DataFrame({"x": rng.normal(size=60)}).to_csv(path, index=False)
    changed = path.read_bytes()
    [v2] = versioning.track(root, [path], "v2", tag="v2")

    assert original != changed and v1.md5 != v2.md5 and v1.commit != v2.commit
    assert versioning.read_version(root, rel, "v1") == original
    assert versioning.read_version(root, rel, v1.commit) == original
    assert versioning.read_version(root, rel, "v2") == changed
    assert sorted(versioning.tags(root, "v*")) == ["v1", "v2"]

    shutil.rmtree(root / ".dvc" / "cache")  # the local cache is gone: the remote has it
    assert versioning.read_version(root, rel, "v1") == original
    assert remote_object(remote, v1.md5).read_bytes() == original


def test_read_version_of_unknown_revision(tmp_path):
    root, _, _ = new_repo(tmp_path)
    rel = "data/reference/reference.csv"
    message = f"{rel}@no-such-tag: cannot be read from {root}: "
    with pytest.raises(VersioningError, match=f"^{re.escape(message)}"):
        versioning.read_version(root, rel, "no-such-tag")


def test_open_repo_on_a_plain_folder(tmp_path):
    with pytest.raises(
        VersioningError, match=f"^{re.escape(str(tmp_path))}: not a DVC data repository"
    ):
        with versioning.open_repo(tmp_path):
            pass


# ---------------------------------------------------------------- dvc repro train


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    """A data repo with a tracked 600-row window, after a first `dvc repro train`."""
    base = tmp_path_factory.mktemp("repro")
    root, remote, params = new_repo(base)
    settings = yaml.safe_load(params.read_text())
    cols = ["instant", "dteday", *settings["data"]["features"], "cnt"]
    pd.read_csv(SOURCE).head(600)[cols].to_csv(root / WINDOW, index=False)
    versioning.track(root, [root / WINDOW], "training window", tag="window-1")
    path_before = os.environ["PATH"]
    ran, _ = versioning.reproduce(root, "train", "train model")
    assert os.environ["PATH"] == path_before
    return root, remote, ran


@pytest.fixture
def repro_copy(reproduced, tmp_path):
    """A private copy of the reproduced repo and its remote (remote re-pointed in config.local)."""
    from dvc.repo import Repo

    src_root, src_remote, _ = reproduced
    root, remote = tmp_path / "repo", tmp_path / "remote"
    shutil.copytree(src_root, root, symlinks=True)
    shutil.copytree(src_remote, remote)
    with Repo(str(root)) as repo, repo.config.edit("local") as conf:
        conf["remote"]["local"] = {"url": str(remote)}
    return root, remote


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]["train"]


def md5s(entries: list[dict]) -> dict[str, str]:
    return {e["path"]: e["md5"] for e in entries}


def file_md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_reproduce_runs_the_train_stage(reproduced):
    """Reference: hashlib.md5 of the window and model files, as recorded in dvc.lock."""
    root, remote, ran = reproduced
    assert ran == ["train"]
    stage = lock(root)
    model_md5 = file_md5(root / "models" / "model.skops")
    assert stage["cmd"].startswith("python -m modelwatch.training.stage --params params.yaml")
    assert md5s(stage["deps"]) == {WINDOW: file_md5(root / WINDOW)}
    assert md5s(stage["outs"]) == {
        "models/model.skops": model_md5,
        "metrics/train.json": file_md5(root / "metrics" / "train.json"),
    }
    assert stage["params"]["params.yaml"]["training.seed"] == 0
    assert "drift" not in json.dumps(stage["params"])
    assert remote_object(remote, model_md5).is_file()  # outputs pushed too

    metrics = json.loads((root / "metrics" / "train.json").read_text())
    assert (metrics["rows"], metrics["model"], metrics["seed"]) == (
        600,
        "hist_gradient_boosting",
        0,
    )
    assert sorted(metrics["cv"]) == ["mae", "mape", "r2", "rmse"]

    window = pd.read_csv(root / WINDOW)
    model = fit.load_model(root / "models" / "model.skops")
    features = yaml.safe_load((root / "params.yaml").read_text())["data"]["features"]
    pred = model.predict(window[features])
    mae = float(np.mean(np.abs(pred - window["cnt"])))
    baseline = float(np.mean(np.abs(window["cnt"] - window["cnt"].mean())))
    assert mae < 0.5 * baseline  # it learned something from the window


def test_second_reproduce_runs_nothing(repro_copy):
    root, _ = repro_copy
    model = (root / "models" / "model.skops").read_bytes()
    assert versioning.reproduce(root, "train", "train model")[0] == []
    assert (root / "models" / "model.skops").read_bytes() == model


def test_drift_threshold_change_does_not_retrain(repro_copy):
    root, _ = repro_copy
    before = lock(root)
    edit_params(root, "drift", "p_value_threshold", 0.01)
    assert versioning.reproduce(root, "train", "train model")[0] == []
    assert lock(root) == before


def test_seed_change_retrains(repro_copy):
    root, remote = repro_copy
    edit_params(root, "training", "seed", 1)
    assert versioning.reproduce(root, "train", "train model")[0] == ["train"]
    assert lock(root)["params"]["params.yaml"]["training.seed"] == 1
    assert json.loads((root / "metrics" / "train.json").read_text())["seed"] == 1
    model_md5 = file_md5(root / "models" / "model.skops")
    assert md5s(lock(root)["outs"])["models/model.skops"] == model_md5
    assert remote_object(remote, model_md5).is_file()


def test_commits_hold_only_the_files_they_name(tmp_path):
    """A stray file in the work tree (another run's CSV, a half-moved labels file) is never
    committed: git gets exactly the .dvc files and DVC's .gitignore of the tracked files."""
    root, _, _ = new_repo(tmp_path)
    stray = root / "data" / "labels" / "stray.csv"
    stray.write_text("id,y\n1,2\n")
    batch = root / "data" / "batches" / "b1.csv"
    batch.write_text("id,x\n1,3\n")
    (version,) = versioning.track(root, [batch], "accept b1")
    committed = versioning._git(root, "show", "--name-only", "--format=", "HEAD").splitlines()
    assert sorted(committed) == ["data/batches/.gitignore", "data/batches/b1.csv.dvc"]
    assert versioning._git(root, "ls-files", "data/labels") == ""
    assert version.commit == versioning.head(root)
    # tracking the same content again commits nothing and names the commit that recorded it
    other = root / "data" / "batches" / "b2.csv"
    other.write_text("id,x\n2,4\n")
    versioning.track(root, [other], "accept b2")
    (again,) = versioning.track(root, [batch], "accept b1 again")
    assert again.commit == version.commit
    assert "stray.csv" not in versioning._git(root, "ls-files")


def test_stale_dvc_and_git_locks_of_dead_processes_are_cleared(tmp_path):
    root, _, _ = new_repo(tmp_path)
    (root / ".dvc" / "tmp").mkdir(parents=True, exist_ok=True)
    (root / ".dvc" / "tmp" / "rwlock").write_text(
        json.dumps({"write": {"data/x": {"pid": 999999999, "cmd": "dvc add"}}, "read": {}})
    )
    (root / ".git" / "index.lock").write_text("")
    batch = root / "data" / "batches" / "b1.csv"
    batch.write_text("id,x\n1,3\n")
    versioning.track(root, [batch], "accept b1")  # would fail on either lock
    assert "999999999" not in (root / ".dvc" / "tmp" / "rwlock").read_text()  # DVC's own, empty
    assert not (root / ".git" / "index.lock").exists()


def test_raw_files_committed_to_git_move_to_dvc(tmp_path):
    """What a killed `dvc add` plus the old `git add -A` left: a raw CSV in git."""
    root, remote, _ = new_repo(tmp_path)
    raw = root / "data" / "labels" / "week-1.csv"
    raw.write_text("id,y\n1,2\n")
    versioning._git(root, "add", "--", "data/labels/week-1.csv")
    versioning._git(root, "commit", "-q", "-m", "raw csv in git")
    assert versioning.raw_files_in_git(root) == ["data/labels/week-1.csv"]
    with versioning.locked(root):
        versioning.move_to_dvc(root, ["data/labels/week-1.csv"], "to dvc")
        assert versioning.push_all_tags(root) == 0  # move_to_dvc pushed it already
    assert versioning.raw_files_in_git(root) == []
    assert (root / "data/labels/week-1.csv.dvc").is_file() and raw.read_text() == "id,y\n1,2\n"
    assert remote_object(remote, file_md5(raw)).is_file()


def test_a_failing_stage_names_its_cause_in_one_line(repro_copy):
    """A feature the window does not have: the error says what the stage said (the KeyError),
    not only DVC's "failed to reproduce"."""
    root, _ = repro_copy
    features = yaml.safe_load((root / "params.yaml").read_text())["data"]["features"]
    edit_params(root, "data", "features", [*features, "no_such_column"])
    with pytest.raises(VersioningError) as err:
        versioning.reproduce(root, "train", "train model")
    assert "dvc repro train failed" in str(err.value)
    assert "KeyError" in str(err.value) and "no_such_column" in str(err.value)
    assert len(str(err.value).splitlines()) == 1
