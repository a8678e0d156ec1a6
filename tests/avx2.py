"""Running a script on oneDNN's AVX2 code path under glibc's malloc checks (where the machine
has them): what the CPU-rewrite tests use to show a heap stays intact."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MALLOC_DEBUG = "/usr/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def run_on_avx2(script: Path, source: str) -> str:
    """Write ``source`` to ``script``, run it with ``ONEDNN_MAX_CPU_ISA=AVX2`` (and glibc's
    malloc checks), assert it exits 0, and return what it printed."""
    script.write_text(source)
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2")
    if os.path.exists(MALLOC_DEBUG):
        env.update(LD_PRELOAD=MALLOC_DEBUG, GLIBC_TUNABLES="glibc.malloc.check=3")
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
