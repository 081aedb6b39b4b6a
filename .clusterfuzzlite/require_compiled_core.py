# PyInstaller runtime hook (build.sh): runs in the packaged fuzzer before its script.
# A packaged target must fuzz the instrumented compiled core; without this, a bundle
# that lost it would fall back to the Python twin without a word (wdcore/_select.py).
import os

os.environ.setdefault("WDCORE_REQUIRE_EXTENSIONS", "1")
