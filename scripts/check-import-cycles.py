#!/usr/bin/env python3
"""Fails when the `use` statements of a crate's files form a circle (dependencies point one
way: see ARCHITECTURE.md). File level, from `use crate::…`, `use super::…` and `use self::…`
outside `#[cfg(test)]` code. Usage: check-import-cycles.py CRATE/src [...]; run by .ci/run."""
import re
import sys
from pathlib import Path

USE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+((?:crate|super|self)(?:::[A-Za-z_]\w*)*)(::\{([^;]*)\})?", re.M)


def module_of(src: Path, file: Path) -> tuple:
    parts = list(file.relative_to(src).with_suffix("").parts)
    if parts and parts[-1] in ("lib", "main", "mod"):
        parts.pop()
    return tuple(parts)


def edges(src: Path) -> dict:
    modules = {module_of(src, f): f for f in src.rglob("*.rs")}
    graph = {m: set() for m in modules}
    for module, file in modules.items():
        text = file.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
        for match in USE.finditer(text):
            path = match.group(1).split("::")
            here = list(module)
            if path[0] == "crate":
                base, rest = [], path[1:]
            else:
                base = here
                while path and path[0] in ("super", "self"):
                    if path[0] == "super":
                        base = base[:-1]
                    path = path[1:]
                rest = path
            names = [n.strip().split("::")[0] for n in (match.group(3) or "").split(",") if n.strip()]
            for target in [base + rest + [n] for n in names] or [base + rest]:
                # The longest prefix that is a file of the crate.
                for k in range(len(target), 0, -1):
                    candidate = tuple(target[:k])
                    if candidate in modules:
                        # A module using its own descendants' items is not a circle.
                        if candidate != module and module[: len(candidate)] != candidate:
                            graph[module].add(candidate)
                        break
    return graph


def circles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted("/".join(m) or "lib" for m in component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def main() -> int:
    bad = 0
    for src in map(Path, sys.argv[1:]):
        for component in circles(edges(src)):
            print(f"{src}: import circle: {', '.join(component)}")
            bad += 1
    if bad == 0:
        print(f"check-import-cycles: no circle in {len(sys.argv) - 1} crates")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
