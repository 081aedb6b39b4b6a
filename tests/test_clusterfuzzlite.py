"""The ClusterFuzzLite / OSS-Fuzz build (.clusterfuzzlite/), run as their builder runs it,
without docker, then each packaged fuzzer run as their runner runs it.

The builder (OSS-Fuzz's `compile` in the base-builder-python image) is reproduced here:
- $SRC holds a copy of the repository as the Dockerfile's COPY makes it ($SRC/wdcore,
  with build.sh copied to $SRC), and $OUT and $WORK are empty directories;
- the environment of an AddressSanitizer build for Python: $CC/$CXX (clang-14 here,
  the builder's own clang there), $CFLAGS/$CXXFLAGS with the base image's flags, the
  sanitizer's and libFuzzer's coverage flags and what `compile` adds for Python,
  $LIB_FUZZING_ENGINE, $SANITIZER, $FUZZING_ENGINE, $FUZZING_LANGUAGE, $ARCHITECTURE;
- PyInstaller at the version that image installs, and atheris, in a venv of this
  test; their own compile_python_fuzzer script, unchanged, at a pinned commit (cached
  under the home directory, see `packaging_script`);
- what `compile` puts in $OUT for a Python build: the sanitizer runtime with libFuzzer
  as sanitizer_with_fuzzer.so (there atheris's copy, built by the image's clang; here
  tools/build-asan-with-fuzzer.sh, for the clang-14 that compiles the core) and
  llvm-symbolizer;
- then `bash -eux $SRC/build.sh` in $SRC/wdcore.

Each fuzzer in $OUT then runs through the wrapper compile_python_fuzzer wrote (which
preloads $OUT/sanitizer_with_fuzzer.so), with the runner image's ASAN_OPTIONS and
fuzzer arguments and the target's .options: the runner's startup check (-runs=4, no
corpus), then a few seconds of fuzzing from the unzipped seed corpus, which must exit
0 having executed inputs, with the instrumented compiled core's counters loaded and no
crash, leak, timeout or OOM artifact.

Marked slow (about 2 minutes): it runs when CI or WDCORE_SLOW is set (conftest.py).
Needs clang-14 (tools/setup-clang.sh installs it as root) and the packaging script;
where either cannot be had it skips with the reason, and in CI it fails instead.
"""
from __future__ import annotations

import configparser
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wdcore import _select

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("ops", "restore")  # fuzz/fuzz_<t>.py, seeds in fuzz/corpus/<t>

# OSS-Fuzz's packaging script for Python fuzzers, pinned: the commit that last changed
# it, and git's object id of the file there (`git rev-parse COMMIT:PATH` in a clone of
# google/oss-fuzz), which whatever we run must hash to.
OSS_FUZZ_COMMIT = "93b417ed1dd2b888bc9fa5d6642fe366291294fc"
SCRIPT_PATH = "infra/base-images/base-builder/compile_python_fuzzer"
SCRIPT_BLOB = "a36c05f3d1a2b2abb3ca492cf26022486cf33ebf"

# what base-builder-python installs (install_python.sh pins PyInstaller; atheris >= 2.3)
BUILDER_PIP = ["pyinstaller==6.10.0", "atheris>=2.3.0"]

# the base image's CFLAGS, the address sanitizer's and the coverage flags `compile` adds,
# and what it adds for Python (leak, function and vptr checks off)
BASE_CFLAGS = ("-O1 -fno-omit-frame-pointer -gline-tables-only "
               "-Wno-error=incompatible-function-pointer-types -Wno-error=int-conversion "
               "-Wno-error=deprecated-declarations -Wno-error=implicit-function-declaration "
               "-Wno-error=implicit-int -Wno-error=unknown-warning-option "
               "-Wno-error=vla-cxx-extension -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION")
SANITIZER_FLAGS = "-fsanitize=address -fsanitize-address-use-after-scope"
COVERAGE_FLAGS = "-fsanitize=fuzzer-no-link"
CFLAGS = f"{BASE_CFLAGS} {SANITIZER_FLAGS} {COVERAGE_FLAGS} -fno-sanitize=function,leak,vptr,"
CXXFLAGS = (f"{BASE_CFLAGS} {SANITIZER_FLAGS} {COVERAGE_FLAGS} -stdlib=libc++"
            " -fno-sanitize=function,leak,vptr")

# the runner image's sanitizer options and fuzzer arguments
RUNNER_ASAN_OPTIONS = (
    "alloc_dealloc_mismatch=0:allocator_may_return_null=1:allocator_release_to_os_interval_ms=500:"
    "check_malloc_usable_size=0:detect_container_overflow=1:detect_odr_violation=0:detect_leaks=1:"
    "detect_stack_use_after_return=1:fast_unwind_on_fatal=0:handle_abort=1:handle_segv=1:"
    "handle_sigill=1:max_uar_stack_size_log=16:print_scariness=1:quarantine_size_mb=10:"
    "strict_memcmp=1:symbolize=1:use_sigaltstack=1:dedup_token_length=3")
RUNNER_UBSAN_OPTIONS = ("print_stacktrace=1:print_summary=1:silence_unsigned_overflow=1:symbolize=1:"
                        "dedup_token_length=3")
RUNNER_FUZZER_ARGS = ["-rss_limit_mb=2560", "-timeout=25"]
FUZZ_SECONDS = 5
ARTIFACTS = ("crash-", "leak-", "timeout-", "oom-", "slow-unit-")

# what a copy of the repository leaves out: local environments and build products
NOT_COPIED = shutil.ignore_patterns(".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__",
                                    ".mypy_cache", ".pytest_cache", ".hypothesis", ".benchmarks",
                                    "corpus-new", "artifacts", "*.so")


def in_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")


def need(ok: bool, why: str) -> None:
    if not ok:
        if in_ci():
            pytest.fail(f"{why} (CI is set, so this fails instead of skipping)")
        pytest.skip(why)


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def packaging_script() -> Path:
    """compile_python_fuzzer at OSS_FUZZ_COMMIT, byte for byte: the copy kept in
    tools/third_party/oss-fuzz (third party, unchanged), else the cache
    ($WDCORE_OSS_FUZZ_DIR, default ~/.cache/wdcore/oss-fuzz/COMMIT), else from a clone of
    google/oss-fuzz named by $WDCORE_OSS_FUZZ_GIT; checked against SCRIPT_BLOB (and
    cached)."""
    kept = ROOT / "tools" / "third_party" / "oss-fuzz" / "compile_python_fuzzer"
    if kept.is_file() and git_blob_id(kept.read_bytes()) == SCRIPT_BLOB:
        return kept
    cache = Path(os.environ.get("WDCORE_OSS_FUZZ_DIR")
                 or Path.home() / ".cache" / "wdcore" / "oss-fuzz" / OSS_FUZZ_COMMIT)
    script = cache / "compile_python_fuzzer"
    if script.is_file() and git_blob_id(script.read_bytes()) == SCRIPT_BLOB:
        return script
    tried = []
    data = None
    clone = os.environ.get("WDCORE_OSS_FUZZ_GIT")
    if clone:
        r = subprocess.run(["git", "-C", clone, "show", f"{OSS_FUZZ_COMMIT}:{SCRIPT_PATH}"],
                           capture_output=True, timeout=60)
        if r.returncode == 0:
            data = r.stdout
        else:
            tried.append(f"git show in {clone}: {r.stderr.decode(errors='replace').strip()}")
    need(data is not None,
         "OSS-Fuzz's compile_python_fuzzer cannot be had (" + "; ".join(tried) + f"); put it in {script}"
         " or set WDCORE_OSS_FUZZ_GIT to a clone of google/oss-fuzz")
    need(git_blob_id(data) == SCRIPT_BLOB,
         f"compile_python_fuzzer has git id {git_blob_id(data)}, not {SCRIPT_BLOB} of {OSS_FUZZ_COMMIT}")
    cache.mkdir(parents=True, exist_ok=True)
    tmp = script.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.chmod(0o755)
    tmp.replace(script)
    return script


def clean_env() -> dict:
    """This process's environment without what would reach into the builds or runs:
    wdcore's switches, Python's paths, a venv, sanitizer settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("WDCORE_", "PYTHON", "VIRTUAL_ENV", "ASAN_", "UBSAN_", "LD_PRELOAD"))}


def run_logged(cmd, log: Path, **kw) -> subprocess.CompletedProcess:
    with open(log, "wb") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **kw)
    return r


def tail(log: Path, n: int = 6000) -> str:
    return log.read_text(errors="replace")[-n:]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """$OUT after the builder's run of .clusterfuzzlite/build.sh, and the venv it ran in."""
    r = subprocess.run([str(ROOT / "tools" / "setup-clang.sh")], capture_output=True, text=True,
                       timeout=900)
    need(r.returncode == 0, f"clang-14 is not available: {r.stderr.strip()[-500:]}")
    script = packaging_script()

    base = tmp_path_factory.mktemp("cflite")
    src, out, work, tools = (base / d for d in ("src", "out", "work", "bin"))
    for d in (out, work, tools):
        d.mkdir()
    shutil.copytree(ROOT, src / "wdcore", ignore=NOT_COPIED, symlinks=True)
    shutil.copy(ROOT / ".clusterfuzzlite" / "build.sh", src / "build.sh")
    shutil.copy(script, tools / "compile_python_fuzzer")

    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *BUILDER_PIP],
                       capture_output=True, text=True, timeout=900)
    need(r.returncode == 0, f"pip install {' '.join(BUILDER_PIP)} failed: {r.stderr.strip()[-800:]}")

    env = clean_env()
    env.update(
        PATH=f"{venv / 'bin'}:{tools}:{os.environ['PATH']}",
        SRC=str(src), OUT=str(out), WORK=str(work),
        CC="clang-14", CXX="clang++-14", CFLAGS=CFLAGS, CXXFLAGS=CXXFLAGS,
        SANITIZER_FLAGS=SANITIZER_FLAGS, COVERAGE_FLAGS=COVERAGE_FLAGS,
        LIB_FUZZING_ENGINE="-fsanitize=fuzzer", SANITIZER="address", FUZZING_ENGINE="libfuzzer",
        FUZZING_LANGUAGE="python", ARCHITECTURE="x86_64",
    )
    # what `compile` itself puts in $OUT for a Python build, before build.sh runs
    subprocess.run([str(ROOT / "tools" / "build-asan-with-fuzzer.sh"),
                    str(out / "sanitizer_with_fuzzer.so")],
                   check=True, capture_output=True, timeout=300, env={**env, "CLANG": "clang-14"})
    shutil.copy(shutil.which("llvm-symbolizer-14"), out / "llvm-symbolizer")

    log = base / "build.log"
    r = run_logged(["bash", "-eux", str(src / "build.sh")], log, cwd=src / "wdcore", env=env,
                   timeout=1800)
    assert r.returncode == 0, f"build.sh failed ({r.returncode}):\n{tail(log)}"
    return {"out": out, "venv": venv}


def test_build_puts_each_target_its_wrapper_package_seeds_and_options_in_out(built):
    out = built["out"]
    for t in TARGETS:
        name = f"fuzz_{t}"
        wrapper = out / name
        assert wrapper.is_file() and os.access(wrapper, os.X_OK)
        assert "LLVMFuzzerTestOneInput" in wrapper.read_text()   # how the runner finds targets
        assert (out / f"{name}.pkg").stat().st_size > 1_000_000
        with zipfile.ZipFile(out / f"{name}_seed_corpus.zip") as z:
            seeds = {info.filename: z.read(info) for info in z.infolist()}
        corpus = ROOT / "fuzz" / "corpus" / t
        assert seeds == {p.name: p.read_bytes() for p in corpus.iterdir() if p.is_file()}
        opts = configparser.ConfigParser()
        opts.read(out / f"{name}.options")
        assert dict(opts["libfuzzer"]) == {"max_len": "512"}


def test_the_core_is_built_with_the_builders_flags_and_packaged(built):
    venv = built["venv"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    listings = {t: subprocess.run([str(venv / "bin" / "pyi-archive_viewer"), "-r", "-b",
                                   str(built["out"] / f"fuzz_{t}.pkg")],
                                  capture_output=True, text=True, check=True).stdout
                for t in TARGETS}
    for module in _select.COMPILED_MODULES:
        rel = module.replace(".", "/")
        so = next(site.glob(rel + ".cpython-*.so"))
        undefined = subprocess.run(["nm", "-D", "--undefined-only", str(so)], capture_output=True,
                                   text=True, check=True).stdout
        # AddressSanitizer's checks and libFuzzer's coverage counters, left to the preload
        assert "__asan_report_" in undefined, so
        assert "__sanitizer_cov_8bit_counters_init" in undefined, so
        for t, listing in listings.items():
            assert f" {rel}.cpython-" in listing, f"{module} missing from fuzz_{t}.pkg"


def runner_env() -> dict:
    """The runner's: its sanitizer options, and no venv or build tools on PATH (the
    package must carry its own Python and modules)."""
    return {**clean_env(), "ASAN_OPTIONS": RUNNER_ASAN_OPTIONS, "UBSAN_OPTIONS": RUNNER_UBSAN_OPTIONS}


def libfuzzer_options(out: Path, name: str) -> list:
    opts = configparser.ConfigParser()
    opts.read(out / f"{name}.options")
    return [f"-{k}={v}" for k, v in opts["libfuzzer"].items()] if "libfuzzer" in opts else []


@pytest.mark.parametrize("target", TARGETS)
def test_each_fuzzer_starts_as_the_runners_check_runs_it(built, target, tmp_path):
    name = f"fuzz_{target}"
    log = tmp_path / "startup.log"
    r = run_logged([str(built["out"] / name), *RUNNER_FUZZER_ARGS, "-seed=1337", "-runs=4"], log,
                   cwd=tmp_path, env=runner_env(), timeout=300)
    assert r.returncode == 0, tail(log)
    assert "Done 4 runs" in log.read_text(errors="replace"), tail(log)


@pytest.mark.parametrize("target", TARGETS)
def test_each_fuzzer_fuzzes_from_its_seed_corpus_without_findings(built, target, tmp_path):
    name = f"fuzz_{target}"
    out = built["out"]
    corpus = tmp_path / "corpus"
    with zipfile.ZipFile(out / f"{name}_seed_corpus.zip") as z:
        z.extractall(corpus)
    seeds = len(list(corpus.iterdir()))
    cwd = tmp_path / "run"
    cwd.mkdir()
    log = tmp_path / "fuzz.log"
    r = run_logged([str(out / name), *RUNNER_FUZZER_ARGS, f"-max_total_time={FUZZ_SECONDS}",
                    "-print_final_stats=1", str(corpus), *libfuzzer_options(out, name)],
                   log, cwd=cwd, env=runner_env(), timeout=300)
    text = log.read_text(errors="replace")
    assert r.returncode == 0, tail(log)
    artifacts = [p.name for d in (cwd, out) for p in d.iterdir() if p.name.startswith(ARTIFACTS)]
    assert not artifacts, artifacts
    assert "INFO: Using preloaded libfuzzer" in text, tail(log)
    # the compiled core's instrumented modules registered their counters with libFuzzer
    loaded = re.search(r"INFO: Loaded (\d+) modules\s+\((\d+) inline 8-bit counters\)", text)
    assert loaded, tail(log)
    assert int(loaded[1]) >= len(_select.COMPILED_MODULES) and int(loaded[2]) > 1000, loaded[0]
    assert re.search(rf"INFO:\s+{seeds} files found in {re.escape(str(corpus))}\n", text), tail(log)
    assert "INITED" in text, tail(log)
    done = re.search(r"Done (\d+) runs in (\d+) second", text)
    assert done and int(done[1]) > seeds, tail(log)   # it mutated past the seeds
