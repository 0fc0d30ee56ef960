"""A generated node_modules-like tree: many small files, scoped and nested
packages, executable bins linked from ``.bin`` by relative symlinks, and
symlinks inside packages. Shared by the tests and ``bench/deps.py``."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GeneratedTree:
    root: Path
    files: int
    bins: tuple[str, ...]  # names under .bin


def generate_node_modules(root: Path, files: int = 20_000, seed: int = 7) -> GeneratedTree:
    """Write a node_modules-like tree of about ``files`` regular files at ``root``."""
    rng = random.Random(seed)
    (root / ".bin").mkdir(parents=True)
    made = 0
    bins: list[str] = []
    index = 0
    while made < files:
        name = f"@scope{index % 7}/pkg{index}" if index % 5 == 0 else f"pkg{index}"
        pkg = root / name
        made += _write_package(pkg, name, rng, min(40, files - made))
        if index % 10 == 0 and made < files:
            nested = pkg / "node_modules" / f"dep{index}"
            made += _write_package(nested, f"dep{index}", rng, min(12, files - made))
        if index % 8 == 0 and (pkg / "bin" / "cli.js").exists():
            bin_name = f"tool{index}"
            os.symlink(os.path.join("..", name, "bin", "cli.js"), root / ".bin" / bin_name)
            bins.append(bin_name)
        index += 1
    return GeneratedTree(root, made, tuple(bins))


def _write_package(pkg: Path, name: str, rng: random.Random, budget: int) -> int:
    if budget <= 0:
        return 0
    (pkg / "lib" / "util").mkdir(parents=True)
    (pkg / "bin").mkdir()
    (pkg / "package.json").write_text(
        f'{{"name": "{name}", "version": "1.0.{rng.randrange(100)}", "main": "index.js"}}\n')
    made = 1
    if made < budget:
        cli = pkg / "bin" / "cli.js"
        cli.write_text(f'#!/usr/bin/env node\nconsole.log("{name} ok");\n')
        cli.chmod(0o755)
        made += 1
    for i in range(budget - made):
        sub = "lib/util" if i % 3 == 0 else "lib"
        (pkg / sub / f"f{i}.js").write_bytes(b"// x\n" * rng.randrange(10, 600))
        made += 1
    if (pkg / "lib" / "f1.js").exists():
        os.symlink("f1.js", pkg / "lib" / "alias.js")  # a symlink inside a package
    return made
