# wxgate: run `make` or `make help` for the targets.
GO       ?= go
FUZZTIME ?= 20s
CONFIG   ?= examples/wxgate.yaml

# staticcheck is pinned (v0.8.2 is release 2026.2.2) and installed under bin/,
# one directory per version, so that changing the pin installs the new release.
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := $(CURDIR)/bin/staticcheck-$(STATICCHECK_VERSION)/staticcheck

# promtool checks and unit-tests the alert rules. It is pinned (module
# v0.316.0 is Prometheus v3.16.0) and installed under bin/ the same way, built
# with the tag remove_all_sd: without the cloud service discoveries it needs
# about 1 GB of modules and 3 to 4 minutes on two cores the first time,
# instead of 1.8 GB and 10 minutes, and checks rules all the same.
PROMTOOL_VERSION := v0.316.0
PROMTOOL         := $(CURDIR)/bin/promtool-$(PROMTOOL_VERSION)/promtool
RULES            := deployments/prometheus

# kustomize renders deployments/kubernetes for the offline check; pinned and
# installed under bin/ the same way (v5.8.2 is the newest that builds with Go 1.26).
KUSTOMIZE_VERSION := v5.8.2
KUSTOMIZE         := $(CURDIR)/bin/kustomize-$(KUSTOMIZE_VERSION)/kustomize

# nats-server -t checks deployments/nats/nats-server.conf with the server
# version wxgate is built and tested with: the one in go.mod.
NATS_SERVER_VERSION := $(shell awk '$$1 == "github.com/nats-io/nats-server/v2" {print $$2}' go.mod)
NATS_SERVER         := $(CURDIR)/bin/nats-server-$(NATS_SERVER_VERSION)/nats-server
# The configuration reads these from the environment; any value will do for a check.
NATS_CHECK_ENV := NATS_SERVER_NAME=check-1 NATS_WXGATE_PASSWORD=check NATS_DOWNSTREAM_PASSWORD=check NATS_SYS_PASSWORD=check

.PHONY: help run sim build test fuzz bench bench-gateway bench-store bench-serve bench-console crash cluster chaos bench-cluster lint deployments-check golangci screenshots

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run wxgate serve on the embedded default (embedded NATS and store under ./data)
	$(GO) run ./cmd/wxgate serve --config $(CONFIG)

sim: ## run the WeChat simulator for the apps of $(CONFIG) on 127.0.0.1:9090
	$(GO) run ./cmd/wxgate sim --config $(CONFIG)

build: ## build bin/wxgate
	$(GO) build -trimpath -o bin/wxgate ./cmd/wxgate

test: ## run the whole test suite with the race detector (what CI runs after lint)
	$(GO) test -race ./...

fuzz: ## run every fuzz target for $(FUZZTIME)
	@for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

bench: ## run the Go benchmarks (crypto, schemas, gateway, wechat)
	$(GO) test -run '^$$' -bench . -benchmem ./crypto/ ./schemas/ ./gateway/ ./internal/wechat/

bench-gateway: ## load-test the gateway over loopback against a bare Gin handler
	$(GO) run ./bench/gateway -n 20000 -c 64

bench-serve: ## push 100,000 events through wxgate serve: events/s and peak RSS (target < 300 MiB)
	$(GO) run ./bench/serve -n 100000

bench-store: ## processor benchmarks (events at 1k and 100k documents vs raw upserts, sends vs the simulator), SQLite then PostgreSQL
	$(GO) test -run '^$$' -bench 'BenchmarkEventsApplied|BenchmarkSends' -benchtime 2000x -timeout 60m ./processor/
	BENCH='BenchmarkEventsApplied|BenchmarkSends' BENCHTIME=2000x bash bench/store/postgres.sh

bench-console: ## render each console page on the embedded store with 1,000 and 100,000 messages
	$(GO) test -run '^$$' -bench BenchmarkPages -benchtime 20x -timeout 30m ./internal/console/

screenshots: ## drive the console in headless Chromium and write a PNG of each page to docs/console/
	$(GO) test -count=1 -run '^TestConsoleInBrowser$$' ./cmd/wxgate/ -console.screenshots=$(CURDIR)/docs/console

crash: ## kill wxgate serve with 200 sends in flight at five moments, restart it, compare the audit with WeChat
	$(GO) run ./bench/crash -n 200 -kill-at 0.2,0.3,0.4,0.5,0.6

cluster: ## start 3 NATS servers, the store, 2 gateways, 2 processors and the simulator on loopback; Ctrl-C stops them
	$(GO) run ./bench/cluster -mode up

chaos: ## under load on the make-cluster cluster, kill -9 a gateway, a processor and the stream's NATS leader; check nothing was lost or done twice
	$(GO) test -tags chaos -run '^TestChaos$$' -count 1 -v -timeout 20m ./bench/cluster

bench-cluster: ## events/s and sends/s of the make-cluster cluster with one processor, then two: the ratio and where the CPU goes
	$(GO) run ./bench/cluster -mode scale -n 1000

lint: $(STATICCHECK) $(PROMTOOL) deployments-check ## gofmt, go vet, staticcheck, promtool on the alert rules and deployments-check (pinned), as CI runs them
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(PROMTOOL) check rules $(RULES)/wxgate-rules.yaml
	cd $(RULES) && $(PROMTOOL) test rules wxgate-rules.test.yaml

deployments-check: $(KUSTOMIZE) $(NATS_SERVER) ## check deployments/ offline: nats-server -t, kustomize build, the objects against Kubernetes 1.30's API types, compose.yaml against the Compose schema
	$(NATS_CHECK_ENV) $(NATS_SERVER) -t -c deployments/nats/nats-server.conf
	$(KUSTOMIZE) build deployments/kubernetes > bin/kubernetes-rendered.yaml
	cd deployments/check && $(GO) vet ./... && $(GO) run . -compose ../compose.yaml < ../../bin/kubernetes-rendered.yaml

golangci: ## golangci-lint with .golangci.yml, when it is installed
	@if command -v golangci-lint >/dev/null; then golangci-lint run; else echo "golangci-lint not installed; skipped"; fi

$(STATICCHECK):
	GOBIN=$(dir $@) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

$(PROMTOOL):
	GOBIN=$(dir $@) $(GO) install -tags remove_all_sd github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

$(KUSTOMIZE):
	GOBIN=$(dir $@) $(GO) install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION)

$(NATS_SERVER):
	GOBIN=$(dir $@) $(GO) install github.com/nats-io/nats-server/v2@$(NATS_SERVER_VERSION)
