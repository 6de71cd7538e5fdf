"""Packaging glue: ships the C++/CUDA sources inside the wheel.

The extension is compiled on first use (see ``s3d_fast/_ext/build.py``), not at
install time: an ahead-of-time build would have to see the user's torch, which
pip's build isolation hides (it would fetch a second, possibly different torch
into the build environment and produce a binary that does not load). So the
wheel carries ``csrc/`` as package data under ``s3d_fast/_csrc``.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_SUFFIXES = (".h", ".cuh", ".cpp", ".cu")


class BuildPyWithSources(build_py):
    def run(self):
        super().run()
        src_root = os.path.join(HERE, "csrc")
        dst_root = os.path.join(self.build_lib, "s3d_fast", "_csrc")
        if os.path.isdir(dst_root):
            shutil.rmtree(dst_root)
        for dirpath, _, filenames in os.walk(src_root):
            for name in filenames:
                if not name.endswith(SOURCE_SUFFIXES):
                    continue
                src = os.path.join(dirpath, name)
                dst = os.path.join(dst_root, os.path.relpath(src, src_root))
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildPyWithSources})
