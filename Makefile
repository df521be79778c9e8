# mom: Mixture-of-Mamba training on WebGPU.
#   make demo   set-up if needed, then the main job
#   make test   set-up if needed, then every test (both WebGPU runtimes, on lavapipe)
GO      ?= go
RUNTIME ?= dawn
OUT     ?= runs/demo

.PHONY: all deps build test demo bench clean

all: build

deps:
	@bash .ci/deps.sh

build:
	$(GO) build -o bin/mom ./cmd/mom

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

demo: deps build
	./bin/mom devices --runtime $(RUNTIME)
	./bin/mom check --runtime $(RUNTIME)

bench: deps build
	$(GO) test -run XXX -bench . -benchtime 1x ./nn/

clean:
	rm -rf bin
