# spacecast — `make run` serves a demo Space; `make test` runs every test.
BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
BUILD_FUZZ ?= build-fuzz
JOBS       ?= $(shell nproc)
FUZZ_SECONDS ?= 60
# make test fuzzes each target for less (20 s x 2 at a time keeps the whole .ci/run under 30 min
# on 2 cores); make fuzz alone, or a nightly job, runs FUZZ_SECONDS
TEST_FUZZ_SECONDS ?= 20
# ThreadSanitizer looks for races between our threads: the real-client tests (darkice, VLC,
# liquidsoap...) and the STOI fidelity run drive the same threads as the other integration tests,
# only for longer; they run unsanitized and under ASan
TSAN_EXCLUDE ?= browser|test_client_|test_speech_fidelity
LISTEN     ?= 127.0.0.1:8000

.PHONY: all deps build web-deps run run-tls test test-unit test-asan test-tsan browser-deps fuzz bench clean

all: build

deps:
	@bash scripts/deps.sh

build: deps web-deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# hls.js from the lockfile, served by spacecast as /web/vendor/hls.js (never from a CDN); the web
# app loads it only to play the HLS overflow, and without it falls back to the browser's own HLS
web-deps:
	@cd webdeps && npm ci --no-audit --no-fund --loglevel=error && mkdir -p ../web/vendor && \
	  cp node_modules/hls.js/dist/hls.light.min.js ../web/vendor/hls.js || \
	  echo "hls.js not installed (npm unreachable?): HLS overflow only in browsers with native HLS" >&2

run: build
	./$(BUILD)/spacecast serve --listen $(LISTEN) --data ./data --demo

# The same demo over HTTPS with a self-signed ECDSA P-256 certificate made once (docs/tls.md)
LISTEN_TLS ?= 127.0.0.1:8443
run-tls: build
	@mkdir -p data/dev-tls && [ -f data/dev-tls/cert.pem ] || openssl req -x509 -newkey ec \
	  -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
	  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout data/dev-tls/key.pem \
	  -out data/dev-tls/cert.pem 2>/dev/null
	@echo "Chromium: --ignore-certificate-errors-spki-list=$$(openssl pkey -in data/dev-tls/key.pem -pubout \
	  -outform der | openssl dgst -sha256 -binary | base64)   clients: --ca-file data/dev-tls/cert.pem"
	./$(BUILD)/spacecast serve --listen $(LISTEN_TLS) --data ./data --demo \
	  --tls-cert data/dev-tls/cert.pem --tls-key data/dev-tls/key.pem

# Every test: unit + integration (real binary, real clients), the same suite under
# ASan+UBSan and under ThreadSanitizer, and every fuzz target for FUZZ_SECONDS.
test: build browser-deps
	cd $(BUILD) && ctest --output-on-failure -j2
	$(MAKE) test-asan
	$(MAKE) test-tsan
	$(MAKE) fuzz FUZZ_SECONDS=$(TEST_FUZZ_SECONDS)

# playwright-core from the lockfile, for the Chromium tests (Debian's /usr/bin/chromium)
browser-deps:
	@cd tests/browser && npm ci --no-audit --no-fund --loglevel=error

test-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DSC_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  ctest --output-on-failure -j2 -LE browser

# ThreadSanitizer: unit + integration (not the browser tests: Chromium is not ours). A report
# in a server's log fails its test (sclib), a report in a unit test fails it (halt_on_error).
test-tsan: deps
	@cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSC_TSAN=ON >/dev/null
	@cmake --build $(BUILD_TSAN) -j$(JOBS)
	cd $(BUILD_TSAN) && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$(CURDIR)/tests/tsan.supp" \
	  ctest --output-on-failure -j2 -LE '$(TSAN_EXCLUDE)' $(TSAN_CTEST_ARGS)

fuzz: deps
	@CC=clang cmake -S . -B $(BUILD_FUZZ) -DCMAKE_BUILD_TYPE=Debug -DSC_FUZZ=ON >/dev/null
	@cmake --build $(BUILD_FUZZ) -j$(JOBS)
	@bash scripts/fuzz.sh $(BUILD_FUZZ) $(FUZZ_SECONDS)

bench: build
	bash bench/run.sh

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_FUZZ)
