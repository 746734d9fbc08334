# tokend: see README.md.
GO ?= go

.PHONY: run build test vet smoke bench bench-wrk pgo fuzz clean

# With a .env, serve for real; on a fresh clone, a loudly labelled development mode.
# The binary replaces the shell (exec) and `go run` is not used, so Ctrl-C
# reaches tokend alone, which shuts down cleanly: make reports no error.
run: build
	@if [ -f .env ]; then exec ./tokend serve; else \
	  echo "make run: no .env here, starting DEVELOPMENT MODE (cp .env.example .env for real use)"; \
	  exec ./tokend serve --dev; fi

build:
	$(GO) build -o tokend .

test: vet
	$(GO) test -race -count=1 ./...

# The README's curl and httpie examples against `tokend serve --dev`, checked
# (make test runs them too).
smoke:
	$(GO) test -count=1 -run '^TestSmokeREADME$$' -v .

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Every benchmark, with allocations; compare figures as ratios within one run.
# Then the out-of-process figures (bench-wrk), unless wrk is missing: against
# a constant-JSON server, and, when a Redis answers (REDIS_URL, default
# 127.0.0.1:6379), with REDIS_URL set versus without.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...
	@if ! command -v wrk >/dev/null; then \
	  echo "bench: wrk is missing, so no out-of-process figure: apt-get install -y wrk"; exit 0; fi; \
	$(MAKE) --no-print-directory bench-wrk || exit 1; \
	if command -v redis-cli >/dev/null && redis-cli -u "$${REDIS_URL:-redis://127.0.0.1:6379/0}" ping >/dev/null 2>&1; then \
	  REDIS=1 $(MAKE) --no-print-directory bench-wrk; \
	else echo "bench: no Redis answers (REDIS_URL), so no with/without-Redis figure"; fi

# The built tokend under wrk (POST /token, warm cache, default middleware)
# against a constant-JSON net/http server, in the same run: prints the
# ratios and counts the answers that were not 200 (see docs/benchmarks.md).
# REDIS=1: tokend with REDIS_URL against tokend without, instead.
# BASE=REV: also tokend built from the git revision REV, in the same rounds
# (token/base judges a change).
bench-wrk:
	GO=$(GO) ./scripts/bench-wrk.sh

# default.pgo is the CPU profile go build optimizes tokend with (PGO): taken
# from the built tokend under bench-wrk's load, POST /token with a warm cache.
# Refresh it after changes to the request path; commit it with them.
pgo:
	ROUNDS=1 PPROF=default.pgo PPROF_SECONDS=15 GO=$(GO) ./scripts/bench-wrk.sh

# Each fuzz target in turn, FUZZTIME each (go test -fuzz takes one target
# at a time). An input that fails is saved under testdata/fuzz/, and every
# `go test` reruns it from then on: fix the bug, then commit the input.
FUZZTIME ?= 20s
fuzz:
	@set -e; for f in $$($(GO) test -list '^Fuzz' . | grep '^Fuzz'); do \
	  echo "== $$f for $(FUZZTIME)"; \
	  $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) .; \
	done

clean:
	rm -f tokend
