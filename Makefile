# tokend: see README.md.
GO ?= go

.PHONY: run build test vet bench fuzz clean

# With a .env, serve for real; on a fresh clone, a loudly labelled development mode.
run:
	@if [ -f .env ]; then $(GO) run . serve; else \
	  echo "make run: no .env here, starting DEVELOPMENT MODE (cp .env.example .env for real use)"; \
	  $(GO) run . serve --dev; fi

build:
	$(GO) build -o tokend .

test: vet
	$(GO) test -race -count=1 ./...

# Speed figures (README, "Limits, cache and reloads"); about 30 s.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...

vet:
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

clean:
	rm -f tokend
