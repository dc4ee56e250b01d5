#!/usr/bin/env python3
"""Keeps the guide's code true: every code block in docs/guide/*.md that follows a marker

    <!-- snippet: tests/python/test_guide.py#connect -->

must equal the region of that file between `[guide:connect]` and `[/guide]` (comment lines in
the file's own syntax; the region is dedented). The files named are tests that `make test`
compiles and runs, so a snippet that stops working fails the build.

    scripts/snippets.py            check (exit 1 and say where, if any block differs)
    scripts/snippets.py --write    rewrite the blocks from the sources
"""
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide"
MARKER = re.compile(r"<!-- snippet: (?P<path>[^#\s]+)#(?P<name>[\w-]+) -->\n```(?P<lang>\w*)\n(?P<code>.*?)```",
                    re.S)
START = re.compile(r"^\s*(?://|#)\s*\[guide:(?P<name>[\w-]+)\]\s*$")
END = re.compile(r"^\s*(?://|#)\s*\[/guide\]\s*$")


def regions(path: pathlib.Path) -> dict:
    """name -> dedented text of each `[guide:name]` … `[/guide]` region of `path`."""
    found, name, lines = {}, None, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if m := START.match(line):
            if name is not None:
                sys.exit(f"{path}:{n}: region {m['name']} opens inside region {name}")
            name, lines = m["name"], []
        elif END.match(line):
            if name is None:
                sys.exit(f"{path}:{n}: [/guide] without an open region")
            if name in found:
                sys.exit(f"{path}:{n}: region {name} appears twice")
            found[name] = textwrap.dedent("\n".join(lines)).strip("\n") + "\n"
            name = None
        elif name is not None:
            lines.append(line)
    if name is not None:
        sys.exit(f"{path}: region {name} is not closed")
    return found


def main() -> int:
    write = "--write" in sys.argv[1:]
    cache, problems, count = {}, [], 0
    pages = sorted(GUIDE.glob("*.md"))
    if not pages:
        print(f"snippets: no pages in {GUIDE}", file=sys.stderr)
        return 1
    for page in pages:
        text = page.read_text()

        def replace(m: re.Match) -> str:
            nonlocal count
            count += 1
            src = ROOT / m["path"]
            if not src.is_file():
                problems.append(f"{page.relative_to(ROOT)}: {m['path']} does not exist")
                return m[0]
            if src not in cache:
                cache[src] = regions(src)
            code = cache[src].get(m["name"])
            if code is None:
                problems.append(f"{page.relative_to(ROOT)}: no region {m['name']} in {m['path']}")
                return m[0]
            if code != m["code"]:
                if not write:
                    problems.append(f"{page.relative_to(ROOT)}: {m['path']}#{m['name']} differs "
                                    "(run scripts/snippets.py --write)")
                    return m[0]
            return f"<!-- snippet: {m['path']}#{m['name']} -->\n```{m['lang']}\n{code}```"

        new = MARKER.sub(replace, text)
        if write and new != text:
            page.write_text(new)
            print(f"snippets: rewrote {page.relative_to(ROOT)}")
    for p in problems:
        print(f"snippets: {p}", file=sys.stderr)
    print(f"snippets: {count} snippets in {len(pages)} pages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
