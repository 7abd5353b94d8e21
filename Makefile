# tda: make run | make test | make chaos | make build | make deps | make bench | make proto | make image | make fleet-demo

GO        ?= go
# Everything is pure Go: static binaries run in the FROM scratch image, and make build,
# make image and the tests share one build cache.
export CGO_ENABLED := 0
BIN       := bin
PLUGINS   := $(BIN)/plugins
VERSION   ?= 0.1.0
COMMIT    ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS   := -s -w -X github.com/tda-dev/tda/version.Version=$(VERSION) -X github.com/tda-dev/tda/version.Commit=$(COMMIT)
GOFLAGS_BUILD := -trimpath -ldflags "$(LDFLAGS)"
# Modules besides the root one: the SDK and the example third-party plugin.
SUBMODULES := sdk examples/plugin-hello
TEST_TIMEOUT ?= 15m

.PHONY: all build deps tda plugins plugin-binaries run run-fresh test race chaos drill bench proto fmt vet clean image screenshots fleet-demo

all: build

## deps: every Go module of the three modules, fetched once, so that builds, vet and tests
## after it work offline
deps:
	@echo "== fetching the Go modules (first time: a minute or two; then nothing to do)"
	@$(GO) mod download
	@for m in $(SUBMODULES); do (cd $$m && $(GO) mod download) || exit 1; done

# Every plugins/<name>/cmd/tda-plugin-<name>: each bundled plugin as a binary of its own. tda
# serves them all itself (`tda plugin-serve`), so make build does not build these; the
# integration tests build the ones they exercise as separate binaries, and `make
# plugin-binaries` builds them all into bin/plugins/ (a binary there replaces the
# component built into tda).
PLUGIN_CMDS ?= $(addprefix ./,$(wildcard plugins/*/cmd/tda-plugin-*))

## build: bin/tda, the agent with every bundled plugin compiled in, and an empty bin/plugins/
## for third-party plugin binaries. On a cold cache it prints its progress: on two cores
## expect 3 to 8 minutes the first time and seconds afterwards.
build: deps
	@mkdir -p $(PLUGINS)
	@echo "== building bin/tda (agent and bundled plugins); third-party plugins go into $(PLUGINS)/"
	@start=$$(date +%s); \
	total=$$($(GO) list -deps ./cmd/tda | wc -l); \
	$(GO) build -v $(GOFLAGS_BUILD) -o $(BIN)/tda ./cmd/tda 2>&1 | \
		awk -v total=$$total 'BEGIN { n = 0 } \
			/^[a-zA-Z0-9_.\/-]+$$/ { n++; if (n % 50 == 0) printf "   compiled %d packages (of at most %d)\n", n, total; next } \
			{ print; err = 1 } END { exit err }' || exit 1; \
	echo "== built in $$(( $$(date +%s) - start ))s: $$(du -h $(BIN)/tda | cut -f1) in bin/tda"

## plugin-binaries: every bundled plugin as a separate binary in bin/plugins/ (each replaces
## the component built into tda; not needed to run tda)
plugin-binaries: deps
	@mkdir -p $(PLUGINS)
	$(GO) build $(GOFLAGS_BUILD) -o $(PLUGINS)/ $(PLUGIN_CMDS)

tda plugins: build

## run: the default config on a scratch copy of the bundled example logs under ./run/, so the
## tree stays clean: append lines to run/examples/logs/*.log and watch them being read (Ctrl-C
## to stop). State and alerts go to run/data and run/alerts; make run-fresh starts over.
RUN_DIR := run
run: build
	@mkdir -p $(RUN_DIR)/examples/logs
	@for f in examples/logs/*.log; do [ -e $(RUN_DIR)/$$f ] || cp $$f $(RUN_DIR)/$$f; done
	@echo "== running bin/tda run -config configs/agent.hcl in ./$(RUN_DIR)/ (alerts below, logs on stderr)"
	cd $(RUN_DIR) && ../$(BIN)/tda run -config ../configs/agent.hcl

run-fresh:
	rm -rf $(RUN_DIR)
	$(MAKE) run

## fleet-demo: a local three-node JetStream cluster (embedded nats-server on 127.0.0.1), two
## detectors and three edges from configs/fleet-*.hcl on the logs of three replicas
## (examples/fleet/logs); prints the cross-replica alert and stops everything (docs/fleet.md)
fleet-demo: build
	$(GO) run ./examples/fleet/demo -tda $(BIN)/tda -plugin-dir $(PLUGINS) -logs examples/fleet/logs \
		-configs configs -work $(RUN_DIR)/fleet-demo

## test: build, vet, every test of every module, then each fuzz target of FUZZ_TARGETS for
## FUZZTIME (their seed corpora and testdata/fuzz crashers already ran with the tests).
## FUZZTIME counts executions: Go 1.26's fuzzing coordinator can fail a target with "context
## deadline exceeded" when a time budget ends while a worker is busy (golang/go#75804), and a
## count has no deadline to race (20,000 take 2-15 s per target here).
FUZZTIME ?= 20000x
FUZZ_TARGETS ?= ./agent/config:FuzzLoadBytes ./agent/api:FuzzDecodeBody ./agent/api:FuzzAPIBodies \
	./agent/ops:FuzzTrail ./agent/ops:FuzzNormalizeName ./plugins/snapshot/provider:FuzzValidSnapshotID \
	./plugins/detect:FuzzActionRequests
test: build vet
	$(GO) test -timeout $(TEST_TIMEOUT) ./...
	@for m in $(SUBMODULES); do echo "== $$m"; (cd $$m && $(GO) test -timeout $(TEST_TIMEOUT) ./...) || exit 1; done
	@for t in $(FUZZ_TARGETS); do echo "== fuzz $$t for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}" || exit 1; done

## race: the tests under the race detector, the agent and plugin binaries the integration
## tests build included (their reports are collected in bin/race/); needs a C compiler. Left
## out: the Docker tests (their test images are static binaries, built without cgo) and the
## file source's kill test (it needs an agent that keeps up with a 20,000 lines/s writer).
RACE_LOGS := $(CURDIR)/$(BIN)/race
race:
	rm -rf $(RACE_LOGS) && mkdir -p $(RACE_LOGS)
	CGO_ENABLED=1 GOFLAGS=-race GORACE=log_path=$(RACE_LOGS)/report $(GO) test -timeout 30m \
		-skip TestKilledAgentDuringWrite $$($(GO) list ./... | grep -v /plugins/docker); status=$$?; \
	if ls $(RACE_LOGS)/report.* >/dev/null 2>&1; then cat $(RACE_LOGS)/report.*; exit 1; fi; exit $$status
	cd sdk && CGO_ENABLED=1 $(GO) test -race ./...

## drill: the recovery drill (examples/flask-app/drill): the example Flask app on PostgreSQL
## under gunicorn, a mass password reset and a bulk deletion, each alerted, restored and
## repaired with tda; prints the report (also written to bin/drill-report.txt). Needs
## PostgreSQL, gunicorn and Debian's Flask and psycopg2 packages.
DRILL_TIMEOUT ?= 10m
drill: build
	TDA_DRILL=1 TDA_DRILL_REPORT=$(CURDIR)/$(BIN)/drill-report.txt $(GO) test -count=1 -v -timeout $(DRILL_TIMEOUT) -run '^TestDrill$$' ./examples/flask-app/drill/

## chaos: the fault scenarios (agent/chaos) against the real binaries, one at a time, ending
## with a table: fault | expected | happened | figures. The full disk needs root (a tmpfs).
CHAOS_TIMEOUT ?= 15m
chaos: build
	TDA_CHAOS=1 $(GO) test -count=1 -v -timeout $(CHAOS_TIMEOUT) -run '^TestChaos$$' ./agent/chaos/

vet:
	$(GO) vet ./...
	@for m in $(SUBMODULES); do (cd $$m && $(GO) vet ./...) || exit 1; done

## bench: benchmark figures (end-to-end throughput, plugins in and out of process, ...), then
## every package benchmark, the SDK's transport (batch scan, handoff) included
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./agent/bench/
	@echo "fleet: events/s edge -> JetStream (3 nodes, R3) -> detector, and line -> alert p50/p99 (docs/fleet.md, Sizing)"
	$(GO) test -run '^$$' -bench 'EdgeToDetector|LineToAlert' -benchtime 1x -timeout 10m ./plugins/nats/
	$(GO) test -p 1 -run '^$$' -bench . -benchmem -timeout 30m $$($(GO) list ./plugins/... | grep -v /plugins/nats) ./agent/runtime/... ./agent/ops/...
	cd sdk && $(GO) test -p 1 -run '^$$' -bench . -benchmem -timeout 30m ./host/ ./internal/...

## proto: regenerate the plugin protocol (needs protoc, protoc-gen-go, protoc-gen-go-grpc)
proto:
	cd sdk/protocol/tdav1 && protoc --go_out=. --go_opt=paths=source_relative \
		--go-grpc_out=. --go-grpc_opt=paths=source_relative plugin.proto

## image: the sidecar image tda:$(VERSION), FROM scratch with the static bin/tda (bundled plugins
## compiled in) and an empty plugin directory for third-party plugins (no registry needed)
IMAGE        ?= tda:$(VERSION)
IMAGE_STAGE  ?= $(BIN)/image
CA_CERTS     ?= /etc/ssl/certs/ca-certificates.crt
DOCKER       ?= docker
DOCKER_BUILD_FLAGS ?=
image:
	rm -rf $(IMAGE_STAGE)
	mkdir -p $(IMAGE_STAGE)/rootfs/opt/tda/bin/plugins $(IMAGE_STAGE)/rootfs/etc/tda \
		$(IMAGE_STAGE)/rootfs/etc/ssl/certs $(IMAGE_STAGE)/home/data $(IMAGE_STAGE)/home/logs
	mkdir -m 1777 $(IMAGE_STAGE)/rootfs/tmp
	$(GO) build $(GOFLAGS_BUILD) -o $(IMAGE_STAGE)/rootfs/opt/tda/bin/tda ./cmd/tda
	cp $(CA_CERTS) $(IMAGE_STAGE)/rootfs/etc/ssl/certs/ca-certificates.crt
	printf 'root:x:0:0:root:/root:/sbin/nologin\ntda:x:10001:10001:tda:/var/lib/tda:/sbin/nologin\n' \
		> $(IMAGE_STAGE)/rootfs/etc/passwd
	printf 'root:x:0:\ntda:x:10001:\n' > $(IMAGE_STAGE)/rootfs/etc/group
	cp configs/capture.hcl $(IMAGE_STAGE)/rootfs/etc/tda/agent.hcl
	$(DOCKER) build $(DOCKER_BUILD_FLAGS) --label org.opencontainers.image.version=$(VERSION) \
		-t $(IMAGE) -f Dockerfile $(IMAGE_STAGE)

## screenshots: regenerate the panel screenshots in docs/img (needs chromium)
screenshots:
	TDA_SCREENSHOTS=1 $(GO) test -count=1 -run 'TestPanelAgainstTheAgent|TestStaticPanel' ./agent/panel/

fmt:
	gofmt -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

clean:
	rm -rf $(BIN)
