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

STEPS   ?= 600
SETTING ?= three
LIMIT   ?= 1500
DATA_FLAGS ?= --limit $(LIMIT) --text-vocab 1024 --image-codes 256 --speech-units 256
DATASET ?= runs/datasets/demo-$(SETTING)-$(LIMIT)
DEMO    := runs/demo-$(shell date +%Y%m%d-%H%M%S)

# The main job: a small dataset of real text, images and speech built from
# the installed corpora (reused when already built), the tiny model trained
# on it dense and as Mixture-of-Mamba, a plot of both runs' per-modality
# losses, and the paper's comparison (FLOPs for MoM to reach the dense
# loss). Each demo writes a new folder under runs/, so nothing earlier is
# overwritten.
demo: deps build
	./bin/mom devices --runtime $(RUNTIME)
	./bin/mom check --runtime $(RUNTIME)
	@if [ -f $(DATASET)/dataset.json ]; then echo "demo: reusing the dataset $(DATASET)"; \
	else ./bin/mom data build --setting $(SETTING) $(DATA_FLAGS) --out $(DATASET); fi
	./bin/mom data show $(DATASET) --examples $(DEMO)/data --n 8
	./bin/mom train --runtime $(RUNTIME) --preset tiny --data $(DATASET) --dense --steps $(STEPS) --eval-every 50 --eval-batches 8 --out $(DEMO)/dense
	./bin/mom train --runtime $(RUNTIME) --preset tiny --data $(DATASET) --split in,x,dt,out --steps $(STEPS) --eval-every 50 --eval-batches 8 --out $(DEMO)/mom
	./bin/mom plot $(DEMO)/dense $(DEMO)/mom -o $(DEMO)/loss.png
	./bin/mom compare $(DEMO)/dense $(DEMO)/mom | tee $(DEMO)/compare.txt
	@echo "demo: data examples, runs, plot and comparison in $(DEMO)"

bench: deps build
	$(GO) test -run XXX -bench . -benchtime 1x ./nn/nnbench/

clean:
	rm -rf bin
