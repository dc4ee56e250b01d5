#!/usr/bin/env bash
# Runs the compiled Kotlin JUnit 5 tests and prints the plain closing line CI reads:
#   kotlin: N passed, N failed
# Usage: scripts/run-junit.sh CLASSES_DIR COMPILE_CLASSPATH NATIVE_LIB_DIR [SOURCE_DIR]
# With SOURCE_DIR, the run fails unless every @Test there ran (JUnit silently skips a test
# method that returns a value, e.g. `fun t() = runBlocking { …; someValue }`).
set -uo pipefail
classes=$1 cp=$2 libdir=$3 sources=${4:-}
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
if [ -n "$sources" ]; then
  declared=$(cat "$sources"/*.kt | grep -c '^ *@Test *$')
  ran=$(( ${passed:-0} + ${failed:-0} ))
  if [ "$ran" -ne "$declared" ]; then
    echo "kotlin: $declared @Test methods declared but $ran ran (a test method must return Unit)" >&2
    exit 1
  fi
fi
