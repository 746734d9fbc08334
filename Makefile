# tokend: see README.md.
GO ?= go

.PHONY: run build test vet smoke bench fuzz clean

# With a .env, serve for real; on a fresh clone, a loudly labelled development mode.
run:
	@if [ -f .env ]; then $(GO) run . serve; else \
	  echo "make run: no .env here, starting DEVELOPMENT MODE (cp .env.example .env for real use)"; \
	  $(GO) run . serve --dev; fi

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

clean:
	rm -f tokend
