# signet: make demo (a local verifying S3 server with signet in front), make test (everything CI runs).

GO        ?= go
CACHE     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
# The tools cache: TOOLS=DIR or SIGNET_TOOLS=DIR (the variable the tests read) moves it.
TOOLS     ?= $(or $(SIGNET_TOOLS),$(CACHE)/signet-tools)
VERSITYGW_VERSION := v1.8.0
VERSITYGW := $(TOOLS)/versitygw-$(VERSITYGW_VERSION)/versitygw
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
MINIO     := $(TOOLS)/minio-$(MINIO_VERSION)/minio
MC_VERSION := v0.0.0-20250313080218-cf909e1063a9
MC        := $(TOOLS)/mc-$(MC_VERSION)/mc
JOSE      := $(TOOLS)/node/node_modules/jose/package.json
AWS_SDK_JS := $(TOOLS)/node/node_modules/@aws-sdk/s3-request-presigner/package.json
DEMO      := $(CURDIR)/.demo
FUZZTIME  ?= 30s

export SIGNET_TOOLS := $(TOOLS)

.PHONY: build test tools vet fuzz demo clean

build:
	$(GO) build -ldflags "-s -w -X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo devel)" -o bin/signet ./cmd/signet

# Test servers and tools, installed once per version into the tools cache (about 8 minutes
# cold, for versitygw, MinIO and mc; later runs reuse them).
tools: $(VERSITYGW) $(MINIO) $(MC) $(JOSE) $(AWS_SDK_JS)

$(VERSITYGW):
	GOBIN=$(dir $@) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

# MinIO (AGPL) runs as a separate test server for session-token tests; it is never imported.
$(MINIO):
	GOBIN=$(dir $@) $(GO) install github.com/minio/minio@$(MINIO_VERSION)

# mc, the MinIO client (AGPL), is a client in the compat checksum matrix: run as a separate
# program only, never imported. compat/mc_test.go pins the same version.
$(MC):
	GOBIN=$(dir $@) $(GO) install github.com/minio/mc@$(MC_VERSION)

# jose: the JWT library Cloudflare's own example uses, to verify locally minted credentials.
$(JOSE):
	npm install --prefix $(TOOLS)/node --no-audit --no-fund jose@6

# The AWS SDK for JavaScript v3, a real client in the compat matrix (compat/clients_test.go
# pins the same versions and installs them itself when they are missing).
$(AWS_SDK_JS):
	npm install --prefix $(TOOLS)/node --no-audit --no-fund @aws-sdk/client-s3@3.1175.0 @aws-sdk/lib-storage@3.1175.0 @aws-sdk/s3-request-presigner@3.1169.0

vet:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff

fuzz:
	@for target in $$(grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/func //' | sort -u); do \
		pkg=$$(grep -rlE "^func $$target\(" --include='*_test.go' . | xargs -n1 dirname | head -n1); \
		echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

# The whole suite: formatting, vet, every test against real servers, then bounded fuzzing.
test: tools vet
	$(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Starts versitygw on 127.0.0.1:7070 and signet on 127.0.0.1:9000 (admin 9001) in front of
# it, uploads and downloads a file through signet, and keeps both running until stopped.
# scripts/demo.sh stops both however it is stopped, and refuses taken ports.
demo: $(VERSITYGW) build
	@VERSITYGW=$(VERSITYGW) SIGNET=$(CURDIR)/bin/signet DEMO_DIR=$(DEMO) scripts/demo.sh

clean:
	rm -rf bin $(DEMO)
