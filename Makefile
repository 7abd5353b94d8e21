# tda: make run | make test | make build | make bench | make proto | make image

GO        ?= go
BIN       := bin
PLUGINS   := $(BIN)/plugins
VERSION   ?= 0.1.0
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/tda-dev/tda/version.Version=$(VERSION) -X github.com/tda-dev/tda/version.Commit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
# Modules besides the root one: the SDK and the example third-party plugin.
SUBMODULES := sdk examples/plugin-hello
TEST_TIMEOUT ?= 15m

.PHONY: all build tda plugins run test test-unit bench proto fmt vet clean

all: build

## build: the agent (bin/tda) and every bundled plugin (bin/plugins/)
build: tda plugins

tda:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/tda ./cmd/tda

plugins:
	@mkdir -p $(PLUGINS)
	$(GO) build $(GOFLAGS_BUILD) -o $(PLUGINS)/ ./plugins/...

## run: the embedded default config on the bundled example logs (Ctrl-C to stop)
run: build
	$(BIN)/tda run -config configs/agent.hcl

## test: build, vet, and every test of every module
test: build vet
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	@for m in $(SUBMODULES); do echo "== $$m"; (cd $$m && $(GO) test -timeout $(TEST_TIMEOUT) ./...) || exit 1; done

vet:
	$(GO) vet ./...
	@for m in $(SUBMODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

## bench: benchmark figures (end-to-end throughput, plugins in and out of process, ...)
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./agent/bench/
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./plugins/... ./agent/runtime/...

## proto: regenerate the plugin protocol (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	cd sdk/protocol/tdav1 && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN)
