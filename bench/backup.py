"""Backup benchmark: `lepton-lake` backup, verify and restore of a simulated lake beside `cp -r` and `rsync -a`.

The lake is simulated locally: ``--files`` files of random (incompressible, pairwise distinct) bytes,
``--size-gb`` in total, spread over tables and ``date=`` partitions of the ``governed`` zone, so
content addressing gets no free deduplication. Every timing below is measured in this run on the
same tree and disk, and every ratio is against ``cp -r`` (the full-copy baseline) or ``rsync -a``
(the incremental-copy baseline) of this run. What each row does:

  cp -r                 plain copy, no checksums, no manifest                    (baseline)
  rsync -a (first)      copy with rsync's own transfer checks                    (baseline)
  rsync -a (unchanged)  second rsync of an unchanged tree: stat-only             (incremental baseline)
  backup (full)         sha256 every file while copying it into objects/, manifest
  verify (deep)         re-hash every stored object against the manifest
  backup (unchanged)    fingerprints match: no file read, only a listing and a manifest
  backup --rehash       re-read every lake file and re-hash every stored object (heals bit rot)
  restore (empty lake)  stage + hash every object, then publish
  restore (unchanged)   the lake still matches: fingerprints checked, nothing written

The operating system's page cache is dropped when possible (root, /proc/sys/vm/drop_caches) before
each step, otherwise the tree may partly come from memory for all tools alike; the output says which.

Run: .venv/bin/python bench/backup.py                     # 10 GB, 10,000 files (needs ~45 GB free)
     .venv/bin/python bench/backup.py --size-gb 1          # quick run: same file count, 100 KB files
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from lepton_pipelines.lake.backup import BackupRepository  # noqa: E402
from lepton_pipelines.lake.store import Lake  # noqa: E402

TABLES = 20


def make_lake(root: Path, files: int, total_bytes: int, seed: int = 7) -> None:
    """``files`` distinct random files, ``total_bytes`` in all, under governed/<table>/date=<day>/."""
    rng = np.random.default_rng(seed)
    size = max(1, total_bytes // files)
    for index in range(files):
        table, day = index % TABLES, index // TABLES
        folder = root / "governed" / f"table_{table:02d}" / f"date=2026-{1 + day // 28 % 12:02d}-{1 + day % 28:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"part-{index:05d}.parquet").write_bytes(rng.bytes(size))


def drop_caches() -> bool:
    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def timed(label: str, action, results: dict[str, float], cold: bool) -> object:
    dropped = drop_caches() if cold else False
    started = time.perf_counter()
    value = action()
    results[label] = time.perf_counter() - started
    print(f"  {label:<22} {results[label]:8.2f} s{'  (page cache dropped)' if dropped else ''}", flush=True)
    return value


def run(command: list[str]) -> None:
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=10.0, help="total lake size in GB (default 10)")
    parser.add_argument("--files", type=int, default=10_000, help="number of files (default 10,000)")
    parser.add_argument("--dir", default=None, help="scratch folder (default: a temp dir; removed afterwards)")
    parser.add_argument("--warm", action="store_true", help="do not try to drop the page cache between steps")
    parser.add_argument("--json", dest="json_out", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    total = int(args.size_gb * 1e9)
    scratch = Path(args.dir or tempfile.mkdtemp(prefix="lepton-bench-backup-"))
    scratch.mkdir(parents=True, exist_ok=True)
    need = total * 5  # lake, backup, cp copy, rsync copy, restored lake
    free = shutil.disk_usage(scratch).free
    if free < need:
        print(f"need ~{need / 1e9:.0f} GB free in {scratch}, have {free / 1e9:.0f} GB; use --size-gb", file=sys.stderr)
        return 2
    if not shutil.which("rsync"):
        print("rsync is not installed (apt-get install rsync)", file=sys.stderr)
        return 2
    lake_dir, backup_dir = scratch / "lake", scratch / "backup"
    results: dict[str, float] = {}
    cold = not args.warm
    try:
        print(
            f"simulated lake: {args.files:,} files, {total / 1e9:.2f} GB ({total // args.files:,} bytes each) in "
            f"{scratch}"
        )
        started = time.perf_counter()
        make_lake(lake_dir, args.files, total)
        print(f"  generated in {time.perf_counter() - started:.1f} s")
        lake, repo = Lake(str(lake_dir)), BackupRepository(str(backup_dir))

        timed("cp -r", lambda: run(["cp", "-r", str(lake_dir), str(scratch / "cp-copy")]), results, cold)
        timed(
            "rsync -a (first)",
            lambda: run(["rsync", "-a", f"{lake_dir}/", f"{scratch / 'rsync-copy'}/"]),
            results,
            cold,
        )
        timed(
            "rsync -a (unchanged)",
            lambda: run(["rsync", "-a", f"{lake_dir}/", f"{scratch / 'rsync-copy'}/"]),
            results,
            cold,
        )
        shutil.rmtree(scratch / "cp-copy")
        shutil.rmtree(scratch / "rsync-copy")

        first = timed("backup (full)", lambda: repo.backup(lake, zones=["governed"]), results, cold)
        report = timed("verify (deep)", lambda: repo.verify(first.snapshot_id), results, cold)
        assert report.ok and report.checked == args.files, report.describe()
        again = timed("backup (unchanged)", lambda: repo.backup(lake, zones=["governed"]), results, cold)
        assert again.objects_copied == 0 and again.hashed == 0
        rehash = timed("backup --rehash", lambda: repo.backup(lake, zones=["governed"], rehash=True), results, cold)
        assert rehash.objects_copied == 0 and rehash.hashed == args.files
        target = Lake(str(scratch / "restored"))
        restored = timed("restore (empty lake)", lambda: repo.restore(target, first.snapshot_id), results, cold)
        assert restored.restored == args.files
        same = timed("restore (unchanged)", lambda: repo.restore(lake, first.snapshot_id), results, cold)
        assert same.restored == 0 and same.unchanged == args.files
    finally:
        if args.dir is None:
            shutil.rmtree(scratch, ignore_errors=True)

    print("\nratios (same run, same disk):")
    rows = [
        ("backup (full)", "cp -r"),
        ("backup (full)", "rsync -a (first)"),
        ("verify (deep)", "cp -r"),
        ("backup (unchanged)", "rsync -a (unchanged)"),
        ("backup --rehash", "cp -r"),
        ("restore (empty lake)", "cp -r"),
        ("restore (unchanged)", "rsync -a (unchanged)"),
    ]
    for ours, baseline in rows:
        print(f"  {ours:<22} / {baseline:<22} = {results[ours] / max(results[baseline], 1e-9):6.2f}x")
    gb = total / 1e9
    print(
        f"\nthroughput: backup {gb / results['backup (full)']:.2f} GB/s, verify {gb / results['verify (deep)']:.2f} "
        "GB/s,"
        f" cp -r {gb / results['cp -r']:.2f} GB/s"
    )
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"files": args.files, "bytes": total, "seconds": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
