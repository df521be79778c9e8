# mom: Mixture-of-Mamba training on WebGPU.
#   make demo   set-up if needed, then the main job
#   make test   set-up if needed, then every test (both WebGPU runtimes, on lavapipe)
GO      ?= go
RUNTIME ?= dawn

.PHONY: all deps build test demo bench clean

all: build

deps:
	@bash .ci/deps.sh

build:
	$(GO) build -o bin/mom ./cmd/mom

test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 30m ./...

STEPS   ?= 300
SETTING ?= three
DEMO    := runs/demo-$(shell date +%Y%m%d-%H%M%S)

# The main job: the tiny model trained dense and as Mixture-of-Mamba on the
# same data, a plot of both runs' per-modality losses, and the paper's
# comparison (FLOPs for MoM to reach the dense loss). Each demo writes a new
# folder under runs/, so nothing earlier is overwritten.
demo: deps build
	./bin/mom devices --runtime $(RUNTIME)
	./bin/mom check --runtime $(RUNTIME)
	./bin/mom train --runtime $(RUNTIME) --preset tiny --setting $(SETTING) --dense --steps $(STEPS) --eval-every 25 --out $(DEMO)/dense
	./bin/mom train --runtime $(RUNTIME) --preset tiny --setting $(SETTING) --split in,x,dt,out --steps $(STEPS) --eval-every 25 --out $(DEMO)/mom
	./bin/mom plot $(DEMO)/dense $(DEMO)/mom -o $(DEMO)/loss.png
	./bin/mom compare $(DEMO)/dense $(DEMO)/mom | tee $(DEMO)/compare.txt
	@echo "demo: runs, plot and comparison in $(DEMO)"

bench: deps build
	$(GO) test -run XXX -bench . -benchtime 1x ./nn/

clean:
	rm -rf bin
