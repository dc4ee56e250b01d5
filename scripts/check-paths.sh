#!/usr/bin/env bash
# Fails when a tracked file refers to a path outside the repository: `../shared` (a folder some
# development machines have beside the clone), an absolute path of such a machine (/work/…), or a
# relative path that climbs above the repository root from the file's own folder. The repository
# must stand alone: every script, test and document it points at ships inside it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PY'
import os, re, subprocess, sys
root = os.path.realpath(".")
files = subprocess.run(["git", "ls-files", "-z"], check=True, capture_output=True).stdout.split(b"\0")
climb = re.compile(r"(?<![\w.])((?:\.\./)+)([\w.\-]+)")
named = re.compile(r"(\.\./shared\b|(?<![\w/])/work/|\bbench-work\b)")
bad = []
this = "scripts/check-paths.sh"
for raw in files:
    path = raw.decode()
    if not path or path == this or path.endswith((".lock", "package-lock.json")):
        continue
    try:
        text = open(path, encoding="utf-8").read()
    except (UnicodeDecodeError, IsADirectoryError, FileNotFoundError):
        continue
    base = os.path.dirname(os.path.join(root, path))
    for n, line in enumerate(text.splitlines(), 1):
        if named.search(line):
            bad.append(f"{path}:{n}: {line.strip()[:120]}")
            continue
        for m in climb.finditer(line):
            target = os.path.normpath(os.path.join(base, m.group(1), m.group(2)))
            if target != root and not target.startswith(root + os.sep):
                bad.append(f"{path}:{n}: {line.strip()[:120]}")
                break
if bad:
    print("check-paths: tracked files refer to paths outside the repository:", file=sys.stderr)
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"check-paths: {len(files) - 1} tracked files refer only to paths inside the repository")
PY
