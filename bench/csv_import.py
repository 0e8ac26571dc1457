"""Benchmark the raw-sample CSV reader and writer (hipimu.storage.csv_io).

Writes a 1,000,000-row long-format CSV (3 sensors interleaved, 8 columns) and
one with mag columns (11 columns) into a temporary directory, then times
``write_raw_csv`` and ``read_raw_csv`` (best of 3) and prints a table. Peak
memory is measured in a separate, untimed run in a fresh subprocess: how far
the call raises the process's peak resident set size (``VmHWM``) above what
it was just before the call. Prints numbers only; asserts nothing about
time.

    python bench/csv_import.py [--rows N] [--repeat R] [--compare]

``--compare`` also times the alternatives the reader's design was chosen
against: the line-by-line reference parser alone, and the ``csv`` module with
numpy column conversion.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np

from hipimu.core.conventions import ROLES
from hipimu.core.model import SampleBlock
from hipimu.storage import csv_io
from hipimu.storage.csv_io import read_raw_csv, write_raw_csv


def make_samples(rows: int, mag: bool, seed: int = 0) -> dict[str, SampleBlock]:
    """Three sensors, ~100 Hz each with their own offset and clock drift, full-precision values."""
    rng = np.random.default_rng(seed)
    roles = list(ROLES)
    counts = [rows // 3 + (1 if k < rows % 3 else 0) for k in range(3)]
    out = {}
    for k, (r, n) in enumerate(zip(roles, counts)):
        rate = 100.0 * (1.0 + 2e-4 * (k - 1))  # slightly different clocks
        t = 0.0013 * k + np.arange(n) / rate
        acc = rng.normal(0.0, 2.0, (n, 3)) + np.array([0.0, 9.80665, 0.0])
        gyr = rng.normal(0.0, 0.5, (n, 3))
        m = rng.normal(0.0, 20.0, (n, 3)) + np.array([20.0, -40.0, 5.0]) if mag else None
        out[r] = SampleBlock(r, t, acc, gyr, m)
    return out


def best_of(repeat: int, fn) -> tuple[float, object]:
    best = float("inf")
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


_PEAK_SCRIPT = """
import resource, sys
sys.path.insert(0, {bench_dir!r})
from csv_import import make_samples
from hipimu.storage.csv_io import read_raw_csv, write_raw_csv

def peak_kib():
    # VmHWM is this process's own high-water mark (ru_maxrss would include the
    # parent's, inherited through fork and kept across exec).
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

op, path, rows, mag = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
samples = make_samples(rows, mag) if op == "write" else None
before = peak_kib()
result = read_raw_csv(path) if op == "read" else write_raw_csv(samples, path, overwrite=True)
print((peak_kib() - before) / 1024.0)
"""


def peak_mb(op: str, path: str, rows: int, mag: bool) -> float:
    """Peak RSS increase (MiB) of one read or write, in a fresh interpreter."""
    code = _PEAK_SCRIPT.format(bench_dir=os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code, op, path, str(rows), "1" if mag else "0"],
        check=True, capture_output=True, text=True,
    )
    return float(out.stdout.strip())


def csv_module_reader(path: str) -> int:
    """Alternative: csv.reader in big chunks, numpy converts the number columns."""
    n = 0
    with open(path, newline="", encoding="utf-8-sig") as f:
        rd = csv.reader(f)
        next(rd)
        while True:
            chunk = [r for _, r in zip(range(65536), rd)]
            if not chunk:
                break
            cols = list(zip(*chunk))
            np.array([cols[0]] + cols[2:8], dtype=np.float64)
            n += len(chunk)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compare", action="store_true", help="also time the alternative parsers")
    args = ap.parse_args(argv)

    print(f"hipimu raw CSV benchmark: {args.rows:,} rows, best of {args.repeat}, "
          f"numpy {np.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    header = (
        f"{'file':<10} {'rows':>9} {'MB':>7} {'read s':>7} {'rows/s':>10} {'write s':>8} "
        f"{'read peak MiB':>13} {'write peak MiB':>14}"
    )
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="hipimu-bench-") as tmp:
        for label, mag in (("8 cols", False), ("11 cols", True)):
            samples = make_samples(args.rows, mag)
            path = os.path.join(tmp, f"raw_{'mag' if mag else 'nomag'}.csv")
            t_write, n = best_of(args.repeat, lambda: write_raw_csv(samples, path, overwrite=True))
            size_mb = os.path.getsize(path) / 1e6
            t_read, back = best_of(args.repeat, lambda: read_raw_csv(path))
            same = all(back[r].equals(samples[r]) for r in samples) and back.keys() == samples.keys()
            mem_read = peak_mb("read", path, args.rows, mag)
            mem_write = peak_mb("write", path, args.rows, mag)
            print(
                f"{label:<10} {n:>9,} {size_mb:>7.1f} {t_read:>7.2f} {n / t_read:>10,.0f} {t_write:>8.2f} "
                f"{mem_read:>13.0f} {mem_write:>14.0f}" + ("" if same else "  ROUND TRIP MISMATCH")
            )
            if args.compare and not mag:
                print()
                t_lt, _ = best_of(1, lambda: np.loadtxt(
                    path, delimiter=",", skiprows=1, comments=None,
                    dtype=np.dtype([("t", "f8"), ("s", "U16")] + [(f"v{i}", "f8") for i in range(6)])))
                print(f"  np.loadtxt alone (structured dtype, no checks): {t_lt:.2f} s")
                t_csv, _ = best_of(1, lambda: csv_module_reader(path))
                print(f"  csv module in 64k-row chunks + numpy conversion (no checks): {t_csv:.2f} s")
                with mock.patch.object(csv_io, "_fast_chunk", lambda *a, **k: None):
                    t_ref, _ = best_of(1, lambda: read_raw_csv(path))
                print(f"  reference line-by-line parser alone (all checks): {t_ref:.2f} s")
                print()
    print("MB: file size, 10^6 bytes. peak MiB: rise of the peak RSS during one call, fresh process, untimed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
