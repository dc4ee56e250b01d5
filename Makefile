# cubechat: every entry point. `make demo` and `make test` work on a fresh machine; they
# install what they need (scripts/setup.sh) and build once into the shared target/.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test

ROOT      := $(CURDIR)
TARGET    := $(ROOT)/target/debug
LIB       := $(TARGET)/libcubechat.so
BINDGEN   := $(TARGET)/uniffi-bindgen
VENV      := $(ROOT)/.venv
KOTLINC   := $(ROOT)/.tools/node_modules/kotlin-compiler/bin/kotlinc
KOTLIN_LIB:= $(ROOT)/.tools/node_modules/kotlin-compiler/lib
BUILD     := $(ROOT)/build
# What the plain JVM jar needs at run time (kotlin-stdlib, kotlinx-coroutines, JNA).
JVM_RT_CP := $(KOTLIN_LIB)/kotlin-stdlib.jar:$(KOTLIN_LIB)/kotlinx-coroutines-core-jvm.jar:/usr/share/java/jna.jar
JAR_DIR   := $(BUILD)/jar
JAR       := $(JAR_DIR)/cubechat-jvm.jar
JAVA_CP   := $(KOTLIN_LIB)/kotlin-stdlib.jar:/usr/share/java/jna.jar:/usr/share/java/junit-jupiter-api.jar:$(KOTLIN_LIB)/kotlinx-coroutines-core-jvm.jar:$(KOTLIN_LIB)/kotlin-test.jar:$(KOTLIN_LIB)/kotlin-test-junit5.jar
PORTABILITY_TARGETS := aarch64-linux-android aarch64-apple-ios
# The one feature set every local build uses (so the library is built once per `make test`):
# the FFI test hooks the Python and Kotlin tests call, and `bindgen` (the uniffi-bindgen
# binary). One set for build, clippy, tests and maturin: a second set would rebuild the
# library each time the other one ran. Shipped libraries (wheel, jar, android/, ios/) are
# built without either.
FEATURES  := --features cubechat-ffi/test-hooks,cubechat-ffi/bindgen
# The crates whose API docs must build without warnings (`make lint`).
DOC_CRATES:= -p cubechat-wire -p cubechat-core -p cubechat-ffi

export CARGO_TERM_COLOR := never

.PHONY: setup build bindings python kotlin swift android ios test test-rust test-python \
        test-kotlin test-interop check-targets jar example-kotlin check-deps check-paths demo bench bench-store chaos lint clean fuzz \
        swift-sources test-examples wheel wheel-check check-snippets

setup:
	scripts/setup.sh

## build: the engine, the FFI library (with the test hooks), cubeserver and uniffi-bindgen
## (dev profile, once).
build:
	cargo build --workspace --all-targets $(FEATURES)

## bindings: Python, Kotlin and Swift sources generated from the unstripped library.
bindings: build
	rm -rf $(BUILD)/bindings && mkdir -p $(BUILD)/bindings
	$(BINDGEN) generate $(LIB) --language python --no-format --out-dir $(BUILD)/bindings/python
	$(BINDGEN) generate $(LIB) --language kotlin --no-format --out-dir $(BUILD)/bindings/kotlin
	$(MAKE) --no-print-directory swift

## python: a wheel built by maturin (uniffi bindings, test hooks, dev profile) with the type
## stubs of the generated module added (scripts/wheel-finish.py), installed into .venv.
python: build
	scripts/setup.sh python
	rm -rf $(BUILD)/wheels
	PATH="$(TARGET):$$PATH" $(VENV)/bin/maturin build -q -m bindings/Cargo.toml --features test-hooks,bindgen --out $(BUILD)/wheels
	$(VENV)/bin/python scripts/wheel-finish.py $(BUILD)/wheels/cubechat-*.whl
	$(VENV)/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps $(BUILD)/wheels/cubechat-*.whl

## wheel: the shipped Python wheel: release profile, no test hooks, linked through zig against
## glibc 2.17 (manylinux2014, the widest Rust's std allows), bindings generated from the
## unstripped library, then stripped (scripts/wheel-finish.py --strip); prints its tags
## (auditwheel show) and sizes. CPU-heavy (LTO, opt-level z): several minutes, not in `make test`.
WHEEL_DIR := $(BUILD)/wheel-release
wheel: build
	scripts/setup.sh python wheel
	rm -rf $(WHEEL_DIR)
	@# No strip at link time: linked through zig with the release profile's
	@# strip = "debuginfo", the library had no symbol table left, where uniffi-bindgen
	@# finds the bindings' metadata ("No UniFFI metadata found"); wheel-finish strips after.
	CARGO_PROFILE_RELEASE_STRIP=none PATH="$(VENV)/bin:$(TARGET):$$PATH" \
	    $(VENV)/bin/maturin build --release --zig \
	    --compatibility manylinux2014 --target x86_64-unknown-linux-gnu \
	    -m bindings/Cargo.toml --out $(WHEEL_DIR)
	$(VENV)/bin/python scripts/wheel-finish.py $(WHEEL_DIR)/cubechat-*.whl --strip
	$(VENV)/bin/auditwheel show $(WHEEL_DIR)/cubechat-*.whl
	@unzip -l $(WHEEL_DIR)/cubechat-*.whl | awk '/libcubechat.so/ {print "wheel: library " $$1 " bytes"}'
	@ls -l $(WHEEL_DIR)/cubechat-*.whl | awk '{print "wheel: " $$9 " " $$5 " bytes"}'

## wheel-check: `make wheel`'s wheel installed with pip into a fresh virtualenv; mypy --strict
## on the Python example against that install, then the example run with it against cubeserver.
wheel-check: wheel
	rm -rf $(BUILD)/wheel-venv
	python3 -m venv $(BUILD)/wheel-venv
	$(BUILD)/wheel-venv/bin/pip install -q --disable-pip-version-check $(WHEEL_DIR)/cubechat-*.whl
	$(VENV)/bin/mypy --strict --no-incremental --python-executable $(BUILD)/wheel-venv/bin/python examples/python/chat.py
	CUBESERVER_BIN=$(TARGET)/cubeserver timeout 120 $(BUILD)/wheel-venv/bin/python examples/python/chat.py

## kotlin: the Kotlin bindings and JUnit tests compiled for the JVM.
kotlin: build
	scripts/setup.sh kotlin
	rm -rf $(BUILD)/kotlin && mkdir -p $(BUILD)/kotlin/src $(BUILD)/kotlin/classes
	$(BINDGEN) generate $(LIB) --language kotlin --no-format --out-dir $(BUILD)/kotlin/src
	$(KOTLINC) -nowarn -jvm-target 17 -cp "$(JAVA_CP)" -d $(BUILD)/kotlin/classes \
	    $$(find $(BUILD)/kotlin/src tests/kotlin -name '*.kt') \
	    $$(find android/src/main/kotlin -name '*.kt' ! -name cubechat.kt)

## jar: a plain JVM jar for desktop/server Kotlin ($(JAR)): the bindings generated from the
## release library and the Kotlin layer (android/src/main/kotlin; the Android-only helper in
## android/src/androidMain is not part of it), plus the release library, stripped, at
## linux-x86-64/libcubechat.so, where JNA finds it on the classpath. No test hooks. Needs at
## run time: kotlin-stdlib, kotlinx-coroutines-core (1.8), JNA 5.
jar: build
	scripts/setup.sh kotlin
	cargo rustc --release -p cubechat-ffi --lib --crate-type cdylib
	rm -rf $(JAR_DIR) && mkdir -p $(JAR_DIR)/src $(JAR_DIR)/classes/linux-x86-64
	$(BINDGEN) generate target/release/libcubechat.so --language kotlin --no-format --out-dir $(JAR_DIR)/src
	$(KOTLINC) -nowarn -jvm-target 17 -cp "$(JVM_RT_CP)" -d $(JAR_DIR)/classes \
	    $$(find $(JAR_DIR)/src -name '*.kt') $$(find android/src/main/kotlin -name '*.kt' ! -name cubechat.kt)
	strip --strip-unneeded -o $(JAR_DIR)/classes/linux-x86-64/libcubechat.so target/release/libcubechat.so
	jar --create --file $(JAR) -C $(JAR_DIR)/classes .
	@echo "jar: $(JAR) $$(stat -c %s $(JAR)) bytes (library $$(stat -c %s $(JAR_DIR)/classes/linux-x86-64/libcubechat.so) bytes)"

## example-kotlin: examples/kotlin compiled against the jar alone and run against a local
## cubeserver (prints what it did; fails unless the library came from the jar).
example-kotlin: jar
	rm -rf $(BUILD)/examples/kotlin && mkdir -p $(BUILD)/examples/kotlin
	$(KOTLINC) -nowarn -jvm-target 17 -cp "$(JAR):$(JVM_RT_CP)" -d $(BUILD)/examples/kotlin examples/kotlin/*.kt
	CUBESERVER_BIN=$(TARGET)/cubeserver timeout 300 examples/kotlin/run.sh $(BUILD)/examples/kotlin $(JAR) "$(JVM_RT_CP)"

## swift: Swift sources, header and modulemap for ios/ (built into an XCFramework on macOS).
swift: build
	$(MAKE) --no-print-directory swift-sources

## swift-sources: the same from whatever target/debug/libcubechat.so is now (no build;
## ios/build-xcframework.sh builds it without the test hooks first).
swift-sources:
	mkdir -p ios/Sources/CubeChat ios/Sources/CubeChatFFI/include
	$(BINDGEN) generate $(LIB) --language swift --no-format --out-dir $(BUILD)/swift
	@# Copied only when changed, so a warm `make test-swift` rebuilds nothing.
	cmp -s $(BUILD)/swift/CubeChat.swift ios/Sources/CubeChat/CubeChat.swift || \
	  cp $(BUILD)/swift/CubeChat.swift ios/Sources/CubeChat/CubeChat.swift
	cmp -s $(BUILD)/swift/CubeChatFFI.h ios/Sources/CubeChatFFI/include/CubeChatFFI.h || \
	  cp $(BUILD)/swift/CubeChatFFI.h ios/Sources/CubeChatFFI/include/CubeChatFFI.h
	cmp -s $(BUILD)/swift/CubeChatFFI.modulemap ios/Sources/CubeChatFFI/include/module.modulemap || \
	  cp $(BUILD)/swift/CubeChatFFI.modulemap ios/Sources/CubeChatFFI/include/module.modulemap

ios: swift
	ios/build-xcframework.sh

android:
	android/build-aar.sh

## test: everything this machine can prove, in every language.
test: check-paths check-snippets setup build check-deps lint test-rust test-python test-examples test-kotlin example-kotlin test-interop check-targets test-swift
	@echo "make test: all suites passed"

test-rust: build
	cargo test --workspace --no-fail-fast $(FEATURES)

test-python: python
	cd tests/python && CUBESERVER_BIN=$(TARGET)/cubeserver timeout 600 $(VENV)/bin/python -m pytest -q

## test-examples: the Python example, type-checked (mypy --strict) and run against cubeserver.
test-examples: python
	$(VENV)/bin/mypy --strict --no-incremental examples/python/chat.py
	CUBESERVER_BIN=$(TARGET)/cubeserver timeout 120 $(VENV)/bin/python examples/python/chat.py

test-kotlin: kotlin
	CUBESERVER_BIN=$(TARGET)/cubeserver timeout 600 scripts/run-junit.sh $(BUILD)/kotlin/classes "$(JAVA_CP)" $(TARGET) tests/kotlin

test-interop: python
	scripts/setup.sh interop
	cd tests/interop && CUBESERVER_BIN=$(TARGET)/cubeserver CUBECHAT_PYTHON=$(VENV)/bin/python \
	    timeout 600 node --test --test-reporter=spec

## test-swift: the ios/ package built and its Swift Testing suite run against cubeserver, in
## Swift 5 and Swift 6 language modes (scripts/swift.sh: Swift 6.0.3 in a Debian trixie chroot
## under /var/cache, installed once; a native `swift` on PATH is used instead when present).
test-swift: swift
	CUBESERVER_BIN=$(TARGET)/cubeserver CUBECHAT_LIB_DIR=$(TARGET) scripts/swift.sh test 1200

## check-deps: one TLS stack (rustls + ring) in the shipped library: no OpenSSL, native-tls, aws-lc.
check-deps:
	@if cargo tree -p cubechat-ffi -e normal --prefix none | grep -iE '^(openssl|native-tls|aws-lc)'; then \
	  echo "check-deps: forbidden TLS crates in cubechat-ffi" >&2; exit 1; fi
	@echo "check-deps: cubechat-ffi uses rustls + ring only"

## check-snippets: every code block of docs/guide/ equals the tested region it names
## (scripts/snippets.py; `scripts/snippets.py --write` refreshes them).
check-snippets:
	scripts/snippets.py

## check-paths: no tracked file refers to a path outside the repository (it stands alone).
check-paths:
	scripts/check-paths.sh

## check-targets: the engine and facade compile for Android and iOS (no NDK/Xcode needed).
check-targets:
	scripts/setup.sh targets
	scripts/check-targets.sh $(PORTABILITY_TARGETS)

## demo: cubeserver on free local ports, two users sign up and log in from Python.
demo: python
	CUBESERVER_BIN=$(TARGET)/cubeserver $(VENV)/bin/python scripts/demo.py

## bench: issue 16's performance report (not a test; needs root): cubechat (Rust API, and the
## Python package over the release library) side by side with xmpp.js and slixmpp on a private
## loopback ejabberd (3 interleaved runs, medians), memory with 1/100/1000 clients, reconnection
## times, the stripped library's size and the store benchmark (10,000 dialogs, 1,000,000
## messages). Writes bench/RESULTS.md and bench/results/ (bench/run.sh; bench/README.md).
## `QUICK=1 make bench`: a smoke run with small counts (report under build/bench/results/).
bench:
	bench/run.sh

## bench-store: the store benchmark alone: 10,000 dialogs + 1,000,000 messages, then open + first
## dialog page + first timeline page (ms) and size on disk (release build).
bench-store:
	cargo run --release -p cubechat-core --example store_bench -- --dialogs 10000 --messages 1000000

## chaos: the full chaos run (10,000 messages over both send paths, >= 200 cuts, truncations,
## stalls) and a cubeserver restart with 200 clients (reconnect-time histogram); prints figures.
chaos:
	CHAOS_MESSAGES=$${CHAOS_MESSAGES:-10000} CHAOS_CUTS=$${CHAOS_CUTS:-200} \
	CHAOS_STALL_MS=$${CHAOS_STALL_MS:-10000} CHAOS_LONG_STALLS=$${CHAOS_LONG_STALLS:-4} \
	    cargo test -p cubechat-e2e --test chaos -- --include-ignored --nocapture --test-threads=1

## lint: rustfmt check, clippy with warnings denied, and the API docs of the exported crates
## built with warnings denied (broken intra-doc links, missing docs).
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings
	RUSTDOCFLAGS="-D warnings" cargo doc --no-deps $(DOC_CRATES)

clean:
	cargo clean
	rm -rf $(BUILD)

## fuzz: each cargo-fuzz target in fuzz/ (its own workspace) for FUZZ_SECONDS; prints the
## executions per target and fails on the first crash (its input is in fuzz/artifacts/).
FUZZ_SECONDS ?= 60
fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for t in $$(cargo fuzz list); do \
	  log=target/fuzz-$$t.log; mkdir -p target; \
	  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run -O --target-dir target $$t -- \
	      -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 >$$log 2>&1; then \
	    tail -40 $$log; echo "fuzz: $$t FAILED (log: fuzz/$$log)"; exit 1; fi; \
	  echo "fuzz: $$t: $$(grep -o 'Done [0-9]* runs in [0-9]* second' $$log | tail -1)"; \
	done
