"""Models are verified before they are loaded: a digest of every file of a registered version,
recorded at registration in the ledger (authoritative) and as a version tag (for people), an
explicit allow-list of the types a model may contain, and never pickle.

What this protects against: the MLflow store (its files, or its unauthenticated artifact API)
is writable by more than modelwatch. `mlflow.sklearn.load_model` takes the serialization format
and the skops trusted types from the model's own MLmodel file, so a changed MLmodel is enough to
run code at the next load. Here the files are read once, hashed, compared with the digest the
ledger recorded when modelwatch registered the version, and `model.skops` is loaded from the
bytes that were hashed, with modelwatch's own list of trusted types.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from modelwatch import names
from modelwatch.errors import ModelIntegrityError, RegistryError
from modelwatch.training.trusted import trusted_types

log = logging.getLogger(__name__)

MODEL_FILE = "model.skops"
META_KEY = "model_digest:{version}"  # ledger meta, per registered model


def read_files(folder: Path) -> dict[str, bytes]:
    """Every file under a model folder, by relative POSIX path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# MLflow rewrites this file in the stored folder when anyone loads models:/<name>/<version>
# from a local store (found by the helper that reviewed this module); nothing that loads a
# model reads it, so it is not part of the digest.
UNSIGNED = frozenset({"registered_model_meta"})


def digest_of(files: dict[str, bytes]) -> str:
    """sha256 over every file's relative path, size and bytes, in path order (UNSIGNED left
    out): a file added, removed, renamed or changed changes it."""
    h = hashlib.sha256()
    for rel in sorted(r for r in files if r not in UNSIGNED):
        data = files[rel]
        h.update(rel.encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


def model_folder(client: Any, name: str, version: str) -> Path:
    """The local folder of a registered version's files (downloaded first from a server)."""
    import mlflow.artifacts

    source = client.get_model_version(name, version).source
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))


def record(client: Any, ledger: Any, name: str, version: str) -> str:
    """Records the digest of a version just registered: the ledger first (what loads compare
    with), then the version tag. Returns the digest."""
    digest = digest_of(read_files(model_folder(client, name, version)))
    ledger.set_meta(name, META_KEY.format(version=version), digest)
    client.set_model_version_tag(name, version, names.MODEL_DIGEST, digest)
    return digest


def load_verified(
    client: Any, ledger: Any, name: str, version: str, extra_trusted: Sequence[str] = ()
) -> Any:
    """Loads a registered version after checking it: its files' digest equals the ledger's
    record, its MLmodel says skops, and model.skops holds only allowed types; the model is
    built from the very bytes that were hashed.

    A version without a ledger record (registered before modelwatch recorded digests) is
    checked against its tag when it has one, and its digest is recorded on first load (with a
    warning): trust on first use, said in the log.

    Raises:
        ModelIntegrityError: any check failed (the message names the version and the check).
    """
    files = verified_files(client, ledger, name, version)
    return _load_files(f"model {name} version {version}", files, extra_trusted)


def load_verified_files(
    client: Any, ledger: Any, name: str, version: str, extra_trusted: Sequence[str] = ()
) -> tuple[Any, dict[str, bytes]]:
    """Returns the model of load_verified and the verified files it was built from (the
    scoring service reads the MLmodel signature from these very bytes).

    Raises:
        ModelIntegrityError: any check failed.
    """
    files = verified_files(client, ledger, name, version)
    return _load_files(f"model {name} version {version}", files, extra_trusted), files


def verified_files(client: Any, ledger: Any, name: str, version: str) -> dict[str, bytes]:
    """Returns a registered version's files once their digest matched the ledger's record (or,
    without a record, its tag: trust on first use, see load_verified).

    Raises:
        ModelIntegrityError: the files changed since registration.
    """
    label = f"model {name} version {version}"
    files = read_files(model_folder(client, name, version))
    digest = digest_of(files)
    key = META_KEY.format(version=version)
    recorded = ledger.get_meta(name, key)
    if recorded is None:
        tag = dict(client.get_model_version(name, version).tags).get(names.MODEL_DIGEST)
        if tag is not None and tag != digest:
            raise ModelIntegrityError(
                f"{label}: its files changed since registration (digest {digest[:12]}, "
                f"tag {names.MODEL_DIGEST} {tag[:12]}); refusing to load it"
            )
        log.warning("%s: no digest recorded; recording %s now (first use)", label, digest[:12])
        ledger.set_meta(name, key, digest)
    elif recorded != digest:
        raise ModelIntegrityError(
            f"{label}: its files changed since registration (digest {digest[:12]}, recorded "
            f"{recorded[:12]}); refusing to load it"
        )
    return files


def load_source(model_uri: str, extra_trusted: Sequence[str] = ()) -> Any:
    """Loads a model logged elsewhere (`modelwatch adopt`): any MLflow model URI, read the same
    way as a registered version (skops only, modelwatch's allow-list), without a digest to
    compare (it is recorded once modelwatch registers its copy).

    Raises:
        ModelIntegrityError: not an sklearn skops model, or a type outside the allow-list.
        RegistryError: the URI cannot be resolved.
    """
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
    except (MlflowException, OSError) as exc:
        raise RegistryError(f"{model_uri}: cannot be read: {exc}") from None
    return _load_files(model_uri, read_files(folder), extra_trusted)


def _load_files(label: str, files: dict[str, bytes], extra_trusted: Sequence[str]) -> Any:
    """Builds the model from a model folder's bytes: sklearn flavour, skops, allow-list."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        flavor = yaml.safe_load(files["MLmodel"].decode())["flavors"]["sklearn"]
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError, yaml.YAMLError):
        raise ModelIntegrityError(f"{label}: MLmodel has no sklearn flavour") from None
    fmt = flavor.get("serialization_format")
    if fmt != "skops" or flavor.get("pickled_model") != MODEL_FILE or MODEL_FILE not in files:
        raise ModelIntegrityError(
            f"{label}: serialization_format {fmt!r} (file {flavor.get('pickled_model')!r}); "
            "modelwatch loads skops files only, never pickle"
        )
    try:
        return skops.io.loads(files[MODEL_FILE], trusted=trusted_types(extra_trusted))
    except UntrustedTypesFoundException as exc:
        raise ModelIntegrityError(
            f"{label}: model.skops holds types outside the allow-list: {exc}; refusing to load "
            "it (training.trusted_types extends the list)"
        ) from None
    except Exception as exc:  # a damaged file: skops raises many kinds
        raise ModelIntegrityError(
            f"{label}: model.skops cannot be read: {type(exc).__name__}: {exc}"
        ) from None
