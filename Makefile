# signet: make demo (a local verifying S3 server with signet in front), make test (everything CI runs).

GO        ?= go
CACHE     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)
TOOLS     ?= $(CACHE)/signet-tools
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
	$(GO) test -count=1 -timeout 30m ./...
	$(MAKE) fuzz

# Starts versitygw on 127.0.0.1:7070 and signet on 127.0.0.1:9000 in front of it, uploads
# and downloads a file through signet, and keeps both running until Ctrl-C.
demo: $(VERSITYGW) build
	@rm -rf $(DEMO) && mkdir -p $(DEMO)/data/demo
	@printf '%s\n' \
	  'listen: 127.0.0.1:9000' \
	  'virtual_host_suffixes: [localhost]' \
	  'accounts:' \
	  '  local:' \
	  '    endpoint: http://127.0.0.1:7070' \
	  '    region: us-east-1' \
	  '    credentials: {access_key_id: demo-key, secret_access_key: demo-secret-key}' \
	  'buckets:' \
	  '  - {name: demo, account: local}' \
	  '  - {name: "scratch-*", account: local}' > $(DEMO)/signet.yaml
	@trap 'kill $$(jobs -p) 2>/dev/null' INT TERM EXIT; \
	$(VERSITYGW) --access demo-key --secret demo-secret-key --region us-east-1 --port 127.0.0.1:7070 \
	  --health /healthz --quiet posix $(DEMO)/data & \
	for i in $$(seq 50); do curl -fs http://127.0.0.1:7070/healthz >/dev/null && break; sleep 0.1; done; \
	./bin/signet serve --config $(DEMO)/signet.yaml 2> $(DEMO)/signet.log & \
	for i in $$(seq 50); do curl -fs http://127.0.0.1:9000/ >/dev/null && break; sleep 0.1; done; \
	echo "hello from signet" > $(DEMO)/hello.txt; \
	echo; echo '$$ curl -T hello.txt http://127.0.0.1:9000/demo/hello.txt   # unsigned upload'; \
	curl -fsS -T $(DEMO)/hello.txt http://127.0.0.1:9000/demo/hello.txt && echo "uploaded"; \
	echo '$$ curl http://127.0.0.1:9000/demo/hello.txt'; \
	curl -fsS http://127.0.0.1:9000/demo/hello.txt; \
	echo; echo "versitygw (verifies SigV4) on 127.0.0.1:7070, signet on 127.0.0.1:9000; log in $(DEMO)/signet.log"; \
	echo "Try, with any dummy credentials:"; \
	echo "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url http://127.0.0.1:9000 s3 cp ./README.md s3://demo/"; \
	echo "  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x aws --endpoint-url http://127.0.0.1:9000 s3 ls s3://demo/"; \
	echo "  curl http://demo.localhost:9000/hello.txt"; \
	echo "Ctrl-C stops both."; \
	wait

clean:
	rm -rf bin $(DEMO)
