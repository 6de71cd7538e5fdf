"""Compile-on-first-use of the s3d_fast C++/CUDA extension.

The first call to any fused op compiles ``csrc/`` with ninja (about a minute on
two cores for the CPU build) into a cache folder keyed by a hash of the
sources, the flags, the Python and torch versions and the backend, then loads
it; later processes find the library there and load it in milliseconds.
``side_plan`` builds another CPU library the same way (the test and benchmark
aids, which must not ship in the extension).

Environment variables:
  S3D_FAST_BUILD      ``auto`` (default): CUDA too when torch has CUDA and nvcc
                      is found; ``cpu``: CPU kernels only; ``cuda``: CPU + CUDA,
                      an error if that is impossible.
  S3D_FAST_CACHE      where builds are kept (default ``~/.cache/s3d_fast``).
  S3D_FAST_VERBOSE    ``1`` shows the compiler's output.
  S3D_FAST_SANITIZE   ``1``: a CPU-only build with AddressSanitizer and
                      UndefinedBehaviorSanitizer, kept apart (``cpu-asan-...``);
                      loading it needs libasan preloaded (docs/kernels/input-checks.md).
  TORCH_CUDA_ARCH_LIST  the GPU architectures (default: the visible GPUs, or
                      ``8.0;9.0+PTX`` when there are none).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import platform
import shutil
import sys
import sysconfig
import time
from dataclasses import dataclass

import torch

from ..errors import ExtensionBuildError

EXT_NAME = "s3d_fast_C"
BACKENDS = ("auto", "cpu", "cuda")
# -march=native is safe here: a library is compiled on, and cached for, the
# machine that runs it.
CPU_CFLAGS = ("-O3", "-fopenmp", "-march=native")
# A test build: every out-of-bounds access and undefined operation (float-to-int
# overflow included, which -fsanitize=undefined leaves out in GCC) aborts.
SANITIZE_FLAGS = (
    "-fsanitize=address,undefined,float-cast-overflow",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
    "-g",
)


def source_root() -> str:
    """Folder holding ``include/``, ``cpu/``, ``cuda/``, ``torch/``.

    Installed wheels carry it as ``s3d_fast/_csrc``; a source checkout has it
    at the repository root.
    """
    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for candidate in (os.path.join(pkg, "_csrc"), os.path.join(os.path.dirname(pkg), "csrc")):
        if os.path.isdir(os.path.join(candidate, "include", "s3d")):
            return candidate
    raise ExtensionBuildError(
        "the C++ sources of s3d_fast are missing (looked for s3d_fast/_csrc and ./csrc); "
        "reinstall with `pip install .` from a complete checkout"
    )


@dataclass(frozen=True)
class BuildPlan:
    with_cuda: bool
    reason: str  # why CUDA is or is not built, for `s3d-fast doctor`
    sources: tuple
    cflags: tuple
    cuda_cflags: tuple
    arch_list: str
    name: str = EXT_NAME
    include_dirs: tuple = ()  # besides the kernels' include/
    source_dirs: tuple = ()  # besides source_root(), fingerprinted with it
    ldflags: tuple = ("-fopenmp",)
    sanitize: bool = False


def sanitize_requested() -> bool:
    return os.environ.get("S3D_FAST_SANITIZE", "0").strip() == "1"


def _cuda_home() -> str | None:
    """The CUDA toolkit: a folder with bin/nvcc and include/cuda_runtime.h.

    torch's own guess follows `which nvcc`, which can be a wrapper outside the
    toolkit (/usr/local/bin/nvcc here), so every candidate is checked.
    """
    from torch.utils.cpp_extension import CUDA_HOME

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates += ["/usr/local/cuda", CUDA_HOME]
    for home in candidates:
        if (
            home
            and os.path.exists(os.path.join(home, "bin", "nvcc"))
            and os.path.exists(os.path.join(home, "include", "cuda_runtime.h"))
        ):
            return home
    return None


def decide_cuda() -> tuple[bool, str]:
    """Whether to build the CUDA backend, and why (or why not)."""
    wanted = os.environ.get("S3D_FAST_BUILD", "auto").strip().lower() or "auto"
    if wanted not in BACKENDS:
        raise ExtensionBuildError(f"S3D_FAST_BUILD={wanted!r} is not one of {', '.join(BACKENDS)}")
    if wanted == "cpu":
        return False, "CUDA not built: S3D_FAST_BUILD=cpu"
    if sanitize_requested():
        if wanted == "cuda":
            raise ExtensionBuildError("S3D_FAST_SANITIZE=1 builds the CPU kernels only; unset S3D_FAST_BUILD=cuda")
        return False, "CUDA not built: S3D_FAST_SANITIZE=1 (a CPU test build)"
    problem = None
    if torch.version.cuda is None:
        problem = f"torch {torch.__version__} is a CPU-only build"
    elif _cuda_home() is None:
        problem = "nvcc not found (set CUDA_HOME to the CUDA toolkit)"
    if problem is None:
        return True, f"CUDA built (torch CUDA {torch.version.cuda}, toolkit at {_cuda_home()})"
    if wanted == "cuda":
        raise ExtensionBuildError(f"S3D_FAST_BUILD=cuda but {problem}")
    return False, f"CUDA not built: {problem}"


def _default_arch_list() -> str:
    if os.environ.get("TORCH_CUDA_ARCH_LIST"):
        return os.environ["TORCH_CUDA_ARCH_LIST"]
    if torch.cuda.is_available():
        caps = sorted({torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())})
        return ";".join(f"{major}.{minor}" for major, minor in caps)
    return "8.0;9.0+PTX"


def make_plan() -> BuildPlan:
    root = source_root()
    with_cuda, reason = decide_cuda()
    sources = sorted(glob.glob(os.path.join(root, "cpu", "*.cpp")))
    sources += sorted(glob.glob(os.path.join(root, "torch", "*.cpp")))
    if with_cuda:
        sources += sorted(glob.glob(os.path.join(root, "cuda", "*.cu")))
        sources += sorted(glob.glob(os.path.join(root, "torch", "cuda", "*.cpp")))
    # torch's ninja writer names objects by file basename: keep them unique.
    stems = [os.path.splitext(os.path.basename(s))[0] for s in sources]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise ExtensionBuildError(f"csrc files share a basename: {', '.join(clashes)}")
    cflags = list(CPU_CFLAGS)
    ldflags = ["-fopenmp"]
    cuda_cflags = ["-O3", "-std=c++17", "--expt-relaxed-constexpr"]
    if with_cuda:
        cflags.append("-DS3D_WITH_CUDA")
        cuda_cflags.append("-DS3D_WITH_CUDA")
    sanitize = sanitize_requested()
    if sanitize:
        cflags = ["-O1" if f == "-O3" else f for f in cflags] + list(SANITIZE_FLAGS)
        ldflags += SANITIZE_FLAGS
    return BuildPlan(
        with_cuda=with_cuda,
        reason=reason,
        sources=tuple(sources),
        cflags=tuple(cflags),
        cuda_cflags=tuple(cuda_cflags),
        arch_list=_default_arch_list() if with_cuda else "",
        ldflags=tuple(ldflags),
        sanitize=sanitize,
    )


def side_plan(name: str, source_dir: str, include_dirs=()) -> BuildPlan:
    """A CPU-only library built like the extension, from the .cpp files of
    ``source_dir``, seeing the kernels' headers: for code that must not ship in
    the extension (the test and benchmark aids)."""
    sources = tuple(sorted(glob.glob(os.path.join(source_dir, "*.cpp"))))
    if not sources:
        raise ExtensionBuildError(f"no .cpp files in {source_dir} to build {name}")
    return BuildPlan(
        with_cuda=False,
        reason=f"{name} is CPU only",
        sources=sources,
        cflags=CPU_CFLAGS,
        cuda_cflags=(),
        arch_list="",
        name=name,
        include_dirs=tuple(include_dirs),
        source_dirs=(source_dir,),
    )


def _fingerprint(plan: BuildPlan) -> str:
    digest = hashlib.sha256(plan.name.encode())
    for root in (source_root(), *plan.source_dirs):
        for path in sorted(glob.glob(os.path.join(root, "**", "*"), recursive=True)):
            if os.path.isfile(path):
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    for part in (
        torch.__version__,
        str(torch.version.cuda),
        sys.version,
        platform.machine(),
        _cpu_flags(),
        repr(plan.cflags),
        repr(plan.cuda_cflags),
        plan.arch_list,
    ):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _cpu_flags() -> str:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return line
    return platform.processor()


def cache_root() -> str:
    return os.path.expanduser(os.environ.get("S3D_FAST_CACHE", "~/.cache/s3d_fast"))


def build_dir(plan: BuildPlan) -> str:
    backend = "cuda" if plan.with_cuda else "cpu-asan" if plan.sanitize else "cpu"
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    name = f"{backend}-torch{torch.__version__.replace('+', '_')}-{py}-{_fingerprint(plan)}"
    if plan.name != EXT_NAME:
        name = f"{plan.name}-{name}"
    return os.path.join(cache_root(), name)


def _library_path(plan: BuildPlan, directory: str) -> str:
    suffix = sysconfig.get_config_var("SHLIB_SUFFIX") or ".so"
    return os.path.join(directory, plan.name + suffix)


@contextlib.contextmanager
def _locked(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check_toolchain(plan: BuildPlan) -> None:
    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        raise ExtensionBuildError(
            f"no C++ compiler ({compiler!r}) found to build the s3d_fast kernels; "
            "install one (Debian/Ubuntu: `apt-get install g++`, conda: "
            "`conda install -c conda-forge gxx`) or point CXX at it"
        )
    from torch.utils.cpp_extension import is_ninja_available

    if not is_ninja_available():
        raise ExtensionBuildError("ninja is needed to build the s3d_fast kernels: `pip install ninja`")


def compile_extension(plan: BuildPlan, directory: str) -> str:
    from torch.utils import cpp_extension

    _check_toolchain(plan)
    verbose = os.environ.get("S3D_FAST_VERBOSE", "0") == "1"
    what = "CPU + CUDA kernels" if plan.with_cuda else "CPU kernels"
    if plan.name != EXT_NAME:
        what += f" of {plan.name}"
    print(
        f"s3d_fast: compiling the {what} (first use; about "
        f"{'5 minutes' if plan.with_cuda else 'a minute'}) into {directory} ...",
        file=sys.stderr,
        flush=True,
    )
    started = time.time()
    env_backup = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if plan.with_cuda:
        os.environ["TORCH_CUDA_ARCH_LIST"] = plan.arch_list
        cuda_home = _cuda_home()
        if cuda_home:
            os.environ["CUDA_HOME"] = cuda_home
            cpp_extension.CUDA_HOME = cuda_home
    includes = [os.path.join(source_root(), "include"), *plan.include_dirs]
    os.makedirs(directory, exist_ok=True)
    try:
        cpp_extension.load(
            name=plan.name,
            sources=list(plan.sources),
            extra_cflags=list(plan.cflags),
            extra_cuda_cflags=list(plan.cuda_cflags),
            extra_ldflags=list(plan.ldflags),
            extra_include_paths=includes,
            build_directory=directory,
            with_cuda=plan.with_cuda,
            is_python_module=False,
            verbose=verbose,
        )
    except Exception as exc:  # the compiler's message is the useful part
        raise ExtensionBuildError(
            f"building the s3d_fast kernels failed ({exc}); rerun with "
            "S3D_FAST_VERBOSE=1 to see the compiler output, or S3D_FAST_BUILD=cpu "
            "to skip CUDA"
        ) from exc
    finally:
        if plan.with_cuda:
            if env_backup is None:
                os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = env_backup
    print(f"s3d_fast: kernels built in {time.time() - started:.0f} s", file=sys.stderr, flush=True)
    return _library_path(plan, directory)


def check_sanitizer_runtime(plan: BuildPlan) -> None:
    """A sanitized library loads only into a process that started with libasan."""
    if plan.sanitize and "libasan" not in os.environ.get("LD_PRELOAD", ""):
        raise ExtensionBuildError(
            "S3D_FAST_SANITIZE=1: the sanitized kernels load only with the sanitizer runtimes preloaded: "
            'LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" '
            "ASAN_OPTIONS=detect_leaks=0 (docs/kernels/input-checks.md)"
        )


def ensure_built(plan: BuildPlan | None = None) -> tuple[str, BuildPlan]:
    """Return the path of a built library for this environment (the extension
    unless ``plan`` says otherwise), building it if needed."""
    plan = plan or make_plan()
    check_sanitizer_runtime(plan)  # torch loads what it builds: the runtime must be there already
    directory = build_dir(plan)
    library = _library_path(plan, directory)
    if os.path.exists(library):
        return library, plan
    with _locked(directory + ".lock"):
        if not os.path.exists(library):  # another process may have built it meanwhile
            compile_extension(plan, directory)
    if not os.path.exists(library):
        raise ExtensionBuildError(f"the build finished but {library} is missing")
    return library, plan
