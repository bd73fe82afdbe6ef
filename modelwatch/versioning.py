"""The git+DVC data repository: every dataset the pipeline reads or writes is versioned here."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelwatch.errors import VersioningError

log = logging.getLogger(__name__)

DVC_YAML_TEMPLATE = Path(__file__).resolve().parent.parent / "dvc.yaml"


@dataclass(frozen=True)
class DataVersion:
    """A versioned file: its path in the data repo, DVC md5, and the git commit that records it."""

    path: str
    md5: str
    commit: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.path, "md5": self.md5, "commit": self.commit}


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise VersioningError(f"git {' '.join(args)} failed in {repo}: {proc.stderr.strip()}")
    return proc.stdout.strip()


@contextmanager
def open_repo(root: Path) -> Iterator[object]:
    """Yields a dvc.repo.Repo for the data repository.

    Raises:
        VersioningError: the folder is not an initialised data repository.
    """
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except NotDvcRepoError as exc:
        raise VersioningError(
            f"{root}: not a DVC data repository (modelwatch commands create it, "
            "e.g. `modelwatch bootstrap`)"
        ) from exc
    previous = os.getcwd()
    os.chdir(root)  # DVC resolves stage working dirs against the cwd, not the repo root
    try:
        yield repo
    finally:
        os.chdir(previous)
        repo.close()


def init_data_repo(root: Path, remote: Path, params_file: Path) -> bool:
    """Creates the git+DVC data repository with a local remote; False if it already exists."""
    if (root / ".dvc").is_dir() and (root / ".git").is_dir():
        sync_pipeline(root, params_file)
        return False
    from dvc.repo import Repo

    root.mkdir(parents=True, exist_ok=True)
    remote.mkdir(parents=True, exist_ok=True)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "modelwatch")
    _git(root, "config", "user.email", "modelwatch@localhost")
    repo = Repo.init(str(root))
    with repo.config.edit() as conf:
        conf["remote"]["local"] = {"url": str(remote)}
        conf["core"]["remote"] = "local"
        conf["core"]["autostage"] = True
        conf["core"]["analytics"] = False
    repo.close()
    for sub in ("reference", "batches", "labels", "predictions", "windows", "quarantine"):
        (root / "data" / sub).mkdir(parents=True, exist_ok=True)
    sync_pipeline(root, params_file)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "Initialise modelwatch data repository")
    log.info("initialised data repository %s (DVC remote %s)", root, remote)
    return True


def sync_pipeline(root: Path, params_file: Path) -> None:
    """Copies the project's dvc.yaml and the active params file into the data repository."""
    shutil.copyfile(DVC_YAML_TEMPLATE, root / "dvc.yaml")
    shutil.copyfile(params_file, root / "params.yaml")


def track(
    root: Path, files: Sequence[Path], message: str, tag: str | None = None
) -> list[DataVersion]:
    """Adds files to DVC, commits the .dvc files to git, pushes to the remote; returns versions.

    Raises:
        VersioningError: a file is outside the repository, or DVC/git failed.
    """
    rels = []
    for f in files:
        try:
            rels.append(str(Path(f).resolve().relative_to(root.resolve())))
        except ValueError:
            raise VersioningError(f"{f}: not inside the data repository {root}") from None
    with open_repo(root) as repo:
        repo.add(rels)
        repo.push()
    return commit(root, message, rels, tag=tag)


def commit(
    root: Path, message: str, rels: Sequence[str] = (), tag: str | None = None
) -> list[DataVersion]:
    """Commits the staged repository state (and tags it); returns the versions of rels."""
    _git(root, "add", "-A")
    if _git(root, "status", "--porcelain"):
        _git(root, "commit", "-q", "-m", message)
    if tag:
        _git(root, "tag", "-f", tag)
    sha = _git(root, "rev-parse", "HEAD")
    return [DataVersion(r, dvc_md5(root, r), sha) for r in rels]


def dvc_md5(root: Path, rel: str) -> str:
    """Returns the md5 DVC recorded for a tracked file (from its .dvc file or dvc.lock).

    Raises:
        VersioningError: the file is not tracked by DVC.
    """
    dvc_file = root / f"{rel}.dvc"
    if dvc_file.exists():
        return str(yaml.safe_load(dvc_file.read_text())["outs"][0]["md5"])
    lock = root / "dvc.lock"
    if lock.exists():
        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for entry in stage.get("outs", []) + stage.get("deps", []):
                if entry["path"] == rel:
                    return str(entry["md5"])
    raise VersioningError(f"{rel}: not tracked by DVC in {root}")


def reproduce(root: Path, stage: str) -> list[str]:
    """Runs `dvc repro <stage>` in the data repository; returns the names of stages that ran.

    Raises:
        VersioningError: the stage command failed.
    """
    from dvc.exceptions import DvcException

    env_path = os.environ.get("PATH", "")
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = f"{bindir}{os.pathsep}{env_path}"  # stage cmd runs this venv's python
    try:
        with open_repo(root) as repo:
            stages = repo.reproduce(stage)
            repo.push()
    except DvcException as exc:
        raise VersioningError(f"dvc repro {stage} failed in {root}: {exc}") from exc
    finally:
        os.environ["PATH"] = env_path
    return [s.addressing for s in stages]


def read_version(root: Path, rel: str, rev: str) -> bytes:
    """Returns the exact bytes of a DVC-tracked file as it was at a git revision (tag or sha)."""
    import dvc.api

    try:
        return dvc.api.read(rel, repo=str(root), rev=rev, mode="rb")
    except Exception as exc:  # dvc raises many types here (PathMissingError, RevError, SCMError)
        raise VersioningError(f"{rel}@{rev}: cannot be read from {root}: {exc}") from exc


def head(root: Path) -> str:
    """Returns the current git commit of the data repository."""
    return _git(root, "rev-parse", "HEAD")


def tags(root: Path, pattern: str = "*") -> list[str]:
    """Returns the git tags matching a glob pattern, oldest first."""
    out = _git(root, "tag", "--list", pattern, "--sort=creatordate")
    return [t for t in out.splitlines() if t]
