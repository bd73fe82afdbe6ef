"""Test-only fault injection: SIGKILL this process's group at a named function.

`install("pkg.module:function:after")` in a test process, or (through sitecustomize.py in this
folder) MODELWATCH_TEST_KILL in the environment of a process started in its own session with
this folder first on PYTHONPATH. A point is
`package.module:function:before` or `package.module:function:after`, several separated by
commas; `Class.method` works too, and `:N` fires at the N-th call (default the first). When the
named module is imported, the function is wrapped; at the point the whole process group dies
with SIGKILL (the CLI, its temporary Prefect server and any DVC stage), as a crashed machine or
an OOM kill would leave it (group=False: this process only, for forked children). With
MODELWATCH_TEST_KILL_PID set, the point SIGKILLs that process instead (a server this process talks
to goes away) and this one carries on. Nothing of this ships: the product has no fail points of
its own.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import os
import signal
import sys

ENV = "MODELWATCH_TEST_KILL"
PID_ENV = "MODELWATCH_TEST_KILL_PID"


def _parse(specs: str) -> dict[str, list[tuple[str, str, int]]]:
    out: dict[str, list[tuple[str, str, int]]] = {}
    for spec in filter(None, (p.strip() for p in specs.split(","))):
        parts = spec.split(":")
        module, function, when = parts[0], parts[1], parts[2]
        nth = int(parts[3]) if len(parts) > 3 else 1
        if when not in ("before", "after"):
            raise ValueError(f"{ENV}: {spec!r}: expected before or after")
        out.setdefault(module, []).append((function, when, nth))
    return out


def _die(point: str, group: bool) -> None:
    other = os.environ.get(PID_ENV)
    if other:
        sys.stderr.write(f"fault injection: SIGKILL of pid {other} at {point}\n")
        sys.stderr.flush()
        os.kill(int(other), signal.SIGKILL)
        return
    sys.stderr.write(f"fault injection: SIGKILL at {point} (pid {os.getpid()})\n")
    sys.stderr.flush()
    try:
        if group:
            os.killpg(os.getpgid(0), signal.SIGKILL)
    finally:
        os.kill(os.getpid(), signal.SIGKILL)


def _wrap(module: object, function: str, when: str, nth: int, group: bool = True) -> None:
    owner, _, name = function.rpartition(".")
    target = getattr(module, owner) if owner else module
    original = getattr(target, name)
    calls = [0]
    point = f"{getattr(module, '__name__', '?')}:{function}:{when}:{nth}"

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        if when == "before" and calls[0] == nth:
            _die(point, group)
        result = original(*args, **kwargs)
        if when == "after" and calls[0] == nth:
            _die(point, group)
        return result

    setattr(target, name, wrapper)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, points: dict[str, list[tuple[str, str, int]]], group: bool) -> None:
        self.points, self.group = points, group

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001 - importlib protocol
        if fullname not in self.points:
            return None
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader, wanted, group = spec.loader, self.points[fullname], self.group

        class _Loader(importlib.abc.Loader):
            def create_module(self, spec):  # noqa: ANN001
                return loader.create_module(spec)

            def exec_module(self, module):  # noqa: ANN001
                loader.exec_module(module)
                for function, when, nth in wanted:
                    _wrap(module, function, when, nth, group)

        spec.loader = _Loader()
        return spec


def install(spec: str, group: bool = True) -> None:
    """Installs kill points now, in this process: functions of modules already imported are
    wrapped at once, the others when they are imported (e.g. in a forked child)."""
    wanted = _parse(spec)
    later = {}
    for module_name, points in wanted.items():
        module = sys.modules.get(module_name)
        if module is None:
            later[module_name] = points
            continue
        for function, when, nth in points:
            _wrap(module, function, when, nth, group)
    if later:
        sys.meta_path.insert(0, _Finder(later, group))
