# keymint — see README.md.
GO       ?= go
BIN      := bin/keymint
FUZZTIME ?= 5s

.PHONY: all run build test vet fmt fmt-check fuzz bench clean

all: build

## run: build and start the server on 127.0.0.1:8080 with state in ./keymint-data
run: build
	./$(BIN) serve

## build: compile bin/keymint
build:
	$(GO) build -o $(BIN) ./cmd/keymint

## test: gofmt check, go vet, every test under the race detector, a short fuzz run
test: fmt-check vet
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

vet:
	$(GO) vet ./...

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

clean:
	rm -rf bin
