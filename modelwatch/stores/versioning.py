"""The git+DVC data repository: every dataset the pipeline reads or writes is versioned here."""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from modelwatch.errors import VersioningError
from modelwatch.io import write_text

log = logging.getLogger(__name__)

DVC_YAML_TEMPLATE = Path(__file__).resolve().parents[2] / "dvc.yaml"  # the project root


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
    first = [p for p in (".dvc", ".dvcignore", "dvc.yaml", "params.yaml") if (root / p).exists()]
    _git(root, "add", "--", *first)
    _git(root, "commit", "-q", "-m", "Initialise modelwatch data repository")
    log.info("initialised data repository %s (DVC remote %s)", root, remote)
    return True


STAGE_PARAMS_HEADER = (
    "# Written by modelwatch from {source}: the validated settings with every default filled\n"
    "# in (the train stage's params dependencies are always present), without the alerts\n"
    "# section (webhook URLs carry tokens; secrets never go into the data repository).\n"
)


def sync_pipeline(root: Path, params_file: Path) -> None:
    """Copies the project's dvc.yaml into the data repository and writes its params.yaml: the
    active settings, defaults filled in, secrets left out (stage_params)."""
    write_text(stage_pipeline(params_file), root / "dvc.yaml")
    write_text(stage_params(params_file), root / "params.yaml")


def stage_pipeline(params_file: Path) -> str:
    """The data repository's dvc.yaml: the template, and with training.entry_point set, the
    entry point's module file as a dependency of the train stage (a change to the code retrains
    on `dvc repro`) and the params folder as where the stage looks the module up."""
    from modelwatch.settings import load_settings
    from modelwatch.training import entry

    template = DVC_YAML_TEMPLATE.read_text()
    spec = load_settings(params_file).settings.training.entry_point
    if not spec:
        return template
    folder = Path(params_file).resolve().parent
    pipeline = yaml.safe_load(template)
    train = pipeline["stages"]["train"]
    train["cmd"] = f"{train['cmd']} --search-path {shlex.quote(str(folder))}"
    source = entry.module_file(spec, folder)
    if source is not None:
        train["deps"] = [*train["deps"], str(source)]
    header = "# Written by modelwatch from its dvc.yaml template and training.entry_point.\n"
    return header + yaml.safe_dump(pipeline, sort_keys=False)


def stage_params(params_file: Path) -> str:
    """The data repository's params.yaml for a params file: every setting but `alerts` (the
    only section holding credentials), with defaults, so a key the train stage depends on
    is present even when the user's file leaves it out."""
    from modelwatch.settings import load_settings

    settings = load_settings(params_file).settings
    dumped = settings.model_dump(mode="json", exclude={"alerts"})
    header = STAGE_PARAMS_HEADER.format(source=Path(params_file).name)
    return header + yaml.safe_dump(dumped, sort_keys=False)


def track(
    root: Path, files: Sequence[Path], message: str, tag: str | None = None
) -> list[DataVersion]:
    """Adds files to DVC, commits their .dvc files to git, pushes them to the remote; returns
    their versions. Holds the data repository's lock throughout.

    Raises:
        VersioningError: a file is outside the repository, DVC or git failed, or another run
            held the repository longer than LOCK_TIMEOUT_SECONDS.
    """
    rels = []
    for f in files:
        try:
            rels.append(str(Path(f).resolve().relative_to(root.resolve())))
        except ValueError:
            raise VersioningError(f"{f}: not inside the data repository {root}") from None
    with locked(root):
        with open_repo(root) as repo:
            _add_and_push(repo, rels)
        return commit(root, message, rels, tag=tag)


def _add_and_push(repo: Any, rels: Sequence[str]) -> None:
    """`dvc add` then `dvc push` of files, at a cost that does not grow with the repository.

    `Repo.add` and `Repo.push(targets=...)` each build DVC's index of every `.dvc` file in the
    repository (to find an existing stage for the path and to check the whole graph for
    overlaps), which made one batch cost 12 ms more per batch of history (benchmarks/README.md).
    This does what `dvc add` does for one new file through DVC's own stage API (create the
    single-file stage, hash and cache its output, write the `.dvc` file and the `.gitignore`
    entry), and pushes exactly those objects with `repo.cloud.push`. It skips the graph
    checks, which cannot fail here: modelwatch adds only plain files under data/, never an
    output of a dvc.yaml stage and never a folder that holds another tracked file.

    Raises:
        VersioningError: a file is missing, or the remote refused an object.
    """
    from dvc.utils import resolve_paths

    hashes = []
    with repo.lock, repo.scm_context(quiet=True):
        for rel in rels:
            if not Path(rel).is_file():
                raise VersioningError(f"{rel}: no such file to version in {repo.root_dir}")
            path, wdir, out = resolve_paths(repo, rel)
            stage = repo.stage.create(
                single_stage=True, validate=False, fname=path, wdir=wdir, outs=[out], force=True
            )
            stage.add_outs()
            stage.dump()
            hashes.append(stage.outs[0].hash_info)
    result = repo.cloud.push(hashes)
    if result.failed:
        raise VersioningError(
            f"dvc push of {', '.join(rels)} failed for {len(result.failed)} object(s); "
            "`modelwatch doctor` pushes what tags need once the remote is back"
        )


def commit(
    root: Path,
    message: str,
    rels: Sequence[str] = (),
    tag: str | None = None,
    extra: Sequence[str] = (),
) -> list[DataVersion]:
    """Commits exactly the git side of DVC-tracked rels (their .dvc files and the .gitignore
    DVC keeps beside them) and the extra git-tracked paths, never anything else in the work
    tree (and tags it); returns the versions of rels. The commit named is the last one that
    recorded them, so a rerun after a crash that already committed commits nothing new.

    Call with the repository locked (`locked`), as `track` does.
    """
    paths = sorted(set(_git_side(root, rels)) | {p for p in extra if (root / p).exists()})
    if paths:
        _git(root, "add", "--", *paths)
        staged = subprocess.run(
            ["git", "-C", str(root), "diff", "--cached", "--quiet", "--", *paths]
        ).returncode
        if staged:
            _git(root, "commit", "-q", "-m", message, "--", *paths)
    if tag:
        _git(root, "tag", "-f", tag)
    recorded = [f"{r}.dvc" for r in rels if (root / f"{r}.dvc").exists()] or paths
    sha = _git(root, "log", "-1", "--format=%H", "--", *recorded) if recorded else ""
    sha = sha or _git(root, "rev-parse", "HEAD")
    return [DataVersion(r, dvc_md5(root, r), sha) for r in rels]


def _git_side(root: Path, rels: Sequence[str]) -> list[str]:
    """The git-tracked companions of DVC-tracked files: <file>.dvc and the folder's .gitignore."""
    out = []
    for rel in rels:
        if (root / f"{rel}.dvc").exists():
            out.append(f"{rel}.dvc")
        ignore = Path(rel).parent / ".gitignore"
        if (root / ignore).exists():
            out.append(str(ignore))
    return out


LOCK_TIMEOUT_SECONDS = 600.0


@contextmanager
def locked(root: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
    """Holds the data repository's lock (a filelock in .dvc/tmp, released by the kernel when
    its holder dies): one writer at a time, others queue. Stale DVC and git locks that a killed
    process left behind are cleared once the lock is ours.

    Raises:
        VersioningError: the lock was not free within `timeout` seconds.
    """
    from filelock import FileLock, Timeout

    path = root / ".dvc" / "tmp" / "modelwatch.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), thread_local=False)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise VersioningError(
            f"{root}: the data repository is locked by another run for more than {timeout:.0f}"
            f" s (lock {path}); try again when it has finished"
        ) from None
    try:
        clear_stale_locks(root)
        yield
    finally:
        lock.release()


def clear_stale_locks(root: Path) -> list[str]:
    """Removes DVC's rwlock entries and git's index.lock left by dead processes (call with the
    repository locked: no live modelwatch process then holds either); returns what it removed."""
    import json

    import psutil

    removed = []
    rwlock = root / ".dvc" / "tmp" / "rwlock"
    if rwlock.exists():
        try:
            info = json.loads(rwlock.read_text() or "{}")
        except ValueError:
            info = {}
        holders = [h for h in info.get("write", {}).values()]
        holders += [h for group in info.get("read", {}).values() for h in group]
        live = [h for h in holders if psutil.pid_exists(int(h.get("pid", 0) or 0))]
        if holders and not live:
            rwlock.unlink()
            removed.append(str(rwlock))
    index_lock = root / ".git" / "index.lock"
    if index_lock.exists():
        index_lock.unlink()
        removed.append(str(index_lock))
    for item in removed:
        log.warning("removed a stale lock left by a killed process: %s", item)
    return removed


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


STAGE_ERROR_FILE = "stage_error.txt"  # modelwatch.training.stage.ERROR_FILE, in metrics/
STAGE_FILES = ("dvc.yaml", "params.yaml", "dvc.lock", "metrics/train.json", "models/.gitignore")


def reproduce(
    root: Path, stage: str, message: str, tag: str | None = None
) -> tuple[list[str], str]:
    """Runs `dvc repro <stage>` in the data repository, pushes its cached outputs and commits
    the stage's git-side files (STAGE_FILES) with the lock held; returns the names of the
    stages that ran and the commit.

    Raises:
        VersioningError: the stage command failed.
    """
    from dvc.exceptions import DvcException

    error_file = root / "metrics" / STAGE_ERROR_FILE
    error_file.unlink(missing_ok=True)
    env_path = os.environ.get("PATH", "")
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = f"{bindir}{os.pathsep}{env_path}"  # stage cmd runs this venv's python
    try:
        with locked(root):
            with open_repo(root) as repo:
                stages = repo.reproduce(stage)
                outs = [str(o.def_path) for s in stages for o in s.outs if o.use_cache]
                if outs:
                    repo.push(targets=outs)
            commit(root, message, (), tag=tag, extra=STAGE_FILES)
            sha = head(root)
    except DvcException as exc:
        cause = error_file.read_text().strip() if error_file.exists() else str(exc)
        raise VersioningError(f"dvc repro {stage} failed in {root}: {cause}") from exc
    finally:
        os.environ["PATH"] = env_path
    return [s.addressing for s in stages], sha


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


def raw_files_in_git(root: Path) -> list[str]:
    """Returns data files under data/ that git tracks directly (they belong in DVC)."""
    listed = _git(root, "ls-files", "--", "data").splitlines()
    return [p for p in listed if not p.endswith((".dvc", ".gitignore")) and p.strip()]


def move_to_dvc(root: Path, rels: Sequence[str], message: str) -> None:
    """Takes files out of git and tracks them with DVC instead, in one commit (call locked)."""
    _git(root, "rm", "-q", "--cached", "--", *rels)
    with open_repo(root) as repo:
        _add_and_push(repo, rels)
    _git(root, "add", "--", *_git_side(root, rels))
    _git(root, "commit", "-q", "-m", message)  # the index holds exactly the removals and .dvc


def push_all_tags(root: Path) -> int:
    """Pushes every version any git tag needs to the DVC remote (`dvc push --all-tags`);
    returns how many objects were missing there (call locked)."""
    with open_repo(root) as repo:
        return int(repo.push(all_tags=True) or 0)
