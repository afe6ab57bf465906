"""The size of the code: tracked Python files over a line budget, and the longest functions (``def`` to its last
line, signature and docstring included), as the issues that split modules measure them.

    python scripts/code_sizes.py                 # files over 300 lines, the 5 longest functions
    python scripts/code_sizes.py --lines 200 --functions 10
"""

import argparse
import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=300, help="report files over this many lines")
    parser.add_argument("--functions", type=int, default=5, help="report this many of the longest functions")
    args = parser.parse_args(argv)
    files = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True)
    big, functions = [], []
    for name in files.stdout.split():
        text = (ROOT / name).read_text()
        if text.count("\n") > args.lines:
            big.append((text.count("\n"), name))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((node.end_lineno - node.lineno + 1, f"{name}:{node.name}"))
    print(f"files over {args.lines} lines: {len(big)}")
    for n, name in sorted(big, reverse=True):
        print(f"  {n:5} {name}")
    print(f"the {args.functions} longest functions:")
    for n, name in sorted(functions, reverse=True)[: args.functions]:
        print(f"  {n:5} {name}")


if __name__ == "__main__":
    main()
