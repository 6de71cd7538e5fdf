"""Make ``import tinycudann`` / ``import nerfacc`` (and nerfacc's submodules) resolve to
s3d-fast's drop-ins, so existing NeRF code runs unchanged.

A finder at the front of ``sys.meta_path`` answers for the redirected top-level
names and everything under them: ``nerfacc.estimators.occ_grid`` loads
``s3d_fast.compat.nerfacc.estimators.occ_grid`` and ``sys.modules`` holds the same
module object under both names (one class, one ``isinstance``).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

import torch

DROP_INS = {"nerfacc": "s3d_fast.compat.nerfacc", "tinycudann": "s3d_fast.compat.tinycudann"}


class _AliasLoader(importlib.abc.Loader):
    """Loads ``target`` and hands that module back under the requested name."""

    def __init__(self, target: str):
        self.target = target

    def create_module(self, spec):
        return None  # a placeholder; exec_module swaps in the real module

    def exec_module(self, module):
        # importlib re-reads sys.modules[name] after exec_module, so the alias is
        # the drop-in's own module (its __name__ and __spec__ stay its own).
        sys.modules[module.__name__] = importlib.import_module(self.target)


class RedirectFinder(importlib.abc.MetaPathFinder):
    """Resolves ``name`` and ``name.*`` for each redirected package to its drop-in."""

    def __init__(self):
        self.redirects: dict[str, str] = {}  # package -> drop-in
        self.reasons: dict[str, str] = {}  # package -> why it is redirected

    def find_spec(self, fullname, path=None, target=None):
        top, _, rest = fullname.partition(".")
        if top not in self.redirects:
            return None
        drop_in = self.redirects[top]
        if importlib.util.find_spec(drop_in) is None:
            raise ModuleNotFoundError(
                f"{fullname}: redirected by s3d_fast.compat.install() to {drop_in}, which this s3d-fast "
                f"does not include (install the real {top} on a machine where it runs, or an s3d-fast with {drop_in})",
                name=fullname,
            )
        target_name = f"{drop_in}.{rest}" if rest else drop_in
        if rest and importlib.util.find_spec(target_name) is None:
            return None  # no such submodule: the usual ModuleNotFoundError names it
        return importlib.util.spec_from_loader(fullname, _AliasLoader(target_name))


def _finder() -> RedirectFinder:
    for finder in sys.meta_path:
        if isinstance(finder, RedirectFinder):
            return finder
    finder = RedirectFinder()
    sys.meta_path.insert(0, finder)
    return finder


def why_redirect(name: str) -> str | None:
    """Why ``name`` needs the drop-in here (absent, or no usable CUDA), or None when
    the real package can run. Does not import the real package."""
    if importlib.util.find_spec(name) is None:
        return f"{name} is not installed"
    if not torch.cuda.is_available():
        return f"{name} is installed but needs CUDA, and torch sees no usable CUDA device"
    return None


def _forget_real(name: str, drop_in: str) -> None:
    """Drop an already imported real ``name`` (and its submodules) from sys.modules,
    so the next import goes through the redirect."""
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        module = sys.modules[key]
        if not getattr(module, "__name__", "").startswith(drop_in):
            del sys.modules[key]


def install(force: bool = False) -> dict[str, str]:
    """Redirect ``tinycudann`` and ``nerfacc`` to ``s3d_fast.compat``'s drop-ins where
    the real package is absent or cannot run here (no usable CUDA), or always with
    ``force``. Idempotent. Returns {package: why} for each package redirected
    (including by an earlier call)."""
    finder = _finder()
    for name, drop_in in DROP_INS.items():
        reason = "forced" if force else why_redirect(name)
        if reason is None or name in finder.redirects:
            continue
        _forget_real(name, drop_in)
        finder.redirects[name] = drop_in
        finder.reasons[name] = reason
    return {name: finder.reasons[name] for name in finder.redirects}
