"""The core-search benchmark's data: the harness's generated items, checked against their
manifest, with the free disk they need.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from search_common import BYTES_PER_ITEM, BenchFailure, log, run_logged


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def size_name(n_items: int) -> str:
    """100000 -> '100k', 1000000 -> '1m' (folder and report names)."""
    if n_items % 1_000_000 == 0:
        return f"{n_items // 1_000_000}m"
    return f"{n_items // 1000}k" if n_items % 1000 == 0 else str(n_items)


def load_timeout(n_items: int) -> float:
    """Upper bound of one side's load: 30 min, or 300 items/s for larger data sets."""
    return max(1800.0, n_items / 300)


def check_disk(args: argparse.Namespace) -> dict[str, Any]:
    """Free space where data and clusters go, against a rough need; fail early when short."""
    need = args.n_items * BYTES_PER_ITEM
    if (args.data_dir / "manifest.json").is_file():
        need -= args.n_items * 2_800  # the ndjson is there already
    loaded = [args.work_dir / side / "loaded.json" for side in ("ours", "peer")]
    if getattr(args, "reuse", False) and all(marker.is_file() for marker in loaded):
        need = 1_000_000_000  # both sides loaded already: results and logs only
    found: dict[str, Any] = {}
    for folder in {args.work_dir, args.data_dir.parent}:
        usage = shutil.disk_usage(folder)
        found[str(folder)] = {
            "free_gb": round(usage.free / 1e9, 1),
            "total_gb": round(usage.total / 1e9, 1),
        }
        if usage.free < need:
            raise BenchFailure(
                f"{folder}: {usage.free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed"
            )
    log(f"disk: {found}; about {need / 1e9:.1f} GB needed")
    return {"free": found, "need_gb": round(need / 1e9, 1)}


def ensure_data(args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    manifest_path = args.data_dir / "manifest.json"
    if not manifest_path.is_file():
        log(f"generating {args.n_items} items (seed {args.seed}) into {args.data_dir}")
        args.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            args.loadgen_python, str(args.harness / "gen_items.py"), "--out-dir",
            str(args.data_dir), "--n-items", str(args.n_items), "--seed", str(args.seed),
        ]  # fmt: skip
        seconds = run_logged(
            command, logs / "gen_items.log", cwd=args.harness, timeout=max(900, args.n_items / 1000)
        )
        log(f"generated in {seconds} s")
    manifest = json.loads(manifest_path.read_text())
    if (manifest.get("n_items"), manifest.get("seed")) != (args.n_items, args.seed):
        raise BenchFailure(
            f"{manifest_path}: n_items/seed {manifest.get('n_items')}/{manifest.get('seed')} "
            f"!= requested {args.n_items}/{args.seed}"
        )
    for name, entry in manifest["files"].items():
        if getattr(args, "trust_manifest", False):
            log("data: sha256 check skipped (--trust-manifest)")
            break
        if sha256_file(args.data_dir / entry["path"]) != entry["sha256"]:
            raise BenchFailure(f"{name}: sha256 differs from {manifest_path}")
    log(f"data ok: {args.data_dir} ({manifest['counts']})")
    return manifest


def data_fingerprint(manifest: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest["files"], sort_keys=True).encode()).hexdigest()[:16]
