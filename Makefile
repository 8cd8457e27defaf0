# keymint — see README.md.
GO       ?= go
BIN      := bin/keymint
FUZZTIME ?= 5s
INTEROP  := testdata/interop

.PHONY: lint all run build test vet fmt fmt-check fuzz bench loadtest loadtest-quick clean interop-deps

all: build

## run: build and start the server on 127.0.0.1:8080 with state in ./keymint-data
run: build
	./$(BIN) serve

## build: compile bin/keymint
build:
	$(GO) build -o $(BIN) ./cmd/keymint

## test: gofmt check, go vet, every test under the race detector, a short fuzz run.
## The Node jose interop test runs when $(INTEROP)/node_modules exists (make interop-deps)
## and skips otherwise, unless KEYMINT_REQUIRE_INTEROP=1 makes that a failure.
test: fmt-check vet
	@[ -d $(INTEROP)/node_modules ] || echo "note: $(INTEROP)/node_modules is missing, so the jose interop test skips; run 'make interop-deps'"
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## lint: staticcheck (downloaded through the module proxy; CI runs it before make test)
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	$(GO) run $(STATICCHECK) ./...

vet:
	$(GO) vet ./...

## interop-deps: install the Node packages of the jose interop test, as pinned by
## $(INTEROP)/package-lock.json (needs Node.js 20+ and npm)
interop-deps:
	npm ci --prefix $(INTEROP) --no-audit --no-fund --ignore-scripts </dev/null

## fuzz: run each fuzz target for FUZZTIME (make fuzz FUZZTIME=10m for a long run)
fuzz:
	$(GO) test ./keys -run '^$$' -fuzz '^FuzzParseSecret$$' -fuzztime $(FUZZTIME)
	$(GO) test ./keys -run '^$$' -fuzz '^FuzzParseScope$$' -fuzztime $(FUZZTIME)

## fmt: rewrite files with gofmt -s
fmt:
	gofmt -s -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -s -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi

## bench: every Go benchmark, with allocations
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## loadtest: build keymint and the reference server, drive both with vegeta over
## loopback, print the table (about 3 minutes; see docs/PERFORMANCE.md).
## Flags pass through: make loadtest LOADTEST_FLAGS='-json out.json -seed-keys 1000000'
loadtest:
	GO=$(GO) $(GO) run ./cmd/loadtest $(LOADTEST_FLAGS)

## loadtest-quick: the same at 3 s a scenario (under a minute)
loadtest-quick:
	GO=$(GO) $(GO) run ./cmd/loadtest -quick $(LOADTEST_FLAGS)

clean:
	rm -rf bin
