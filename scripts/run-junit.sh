#!/usr/bin/env bash
# Runs the compiled Kotlin JUnit 5 tests and prints the plain closing line CI reads:
#   kotlin: N passed, N failed
# Usage: scripts/run-junit.sh CLASSES_DIR COMPILE_CLASSPATH NATIVE_LIB_DIR
set -uo pipefail
classes=$1 cp=$2 libdir=$3
klib="$(dirname "$0")/../.tools/node_modules/kotlin-compiler/lib"
out=$(mktemp)
java -Djna.library.path="$libdir" -jar /usr/share/java/junit-platform-console-standalone.jar \
  --disable-banner --details=tree --disable-ansi-colors \
  -cp "$classes:$cp:$klib/kotlin-stdlib.jar" --scan-classpath "$classes" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
passed=$(grep -oE '\[ *[0-9]+ tests successful' "$out" | grep -oE '[0-9]+' | head -1)
failed=$(grep -oE '\[ *[0-9]+ tests failed' "$out" | grep -oE '[0-9]+' | head -1)
rm -f "$out"
echo "kotlin: ${passed:-0} passed, ${failed:-0} failed"
if [ "$rc" -ne 0 ] || [ "${passed:-0}" -eq 0 ]; then exit 1; fi
