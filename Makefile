# The null-class study, stage by stage. Every artifact is a file target: a finished
# one is skipped, a killed run resumes, and a changed input or setting reruns
# exactly the stages below it.
#
#   make demo              small end-to-end study on CPU (installs what it needs)
#   make test              the test suite
#   make all SEEDS=30      the full study: 30 sets x 8 models, attacks, scores, report
#   make models|attacks|eval|report|toy   one stage (and what it needs)
#   make robust            beyond the report: PGD, adaptive attacks, rejection baseline
#   make bench             speed table (trainer vs PyTorch eager)

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DELETE_ON_ERROR:

ARTIFACTS ?= artifacts
SEEDS ?= 1
EPOCHS ?= 20
STEPS ?= 1875
BATCH ?= 32
DEVICE ?= auto
# Checkpoint choice: test (the published code) or holdout (a slice of training data).
VALIDATION ?= test
TRAIN_FLAGS ?=
N_ADV ?= 1000
ATTACK_FLAGS ?=
EVAL_FLAGS ?=
THREADS ?=
# Beyond the report (issue 6): images per set, and adversary-gen robust's options.
ROBUST_N ?= 1000
ROBUST_FLAGS ?=

# glibc otherwise returns and re-faults the big activation buffers every step
# (toolchain.md): a free ~20 % on CPU.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184

BIN := target/release
TORCH := scripts/with-torch.sh
VARIANTS := base u s m us um sm usm
SETS := $(shell seq -f 'seed-%02g' 0 $$(( $(SEEDS) - 1 )))
DATA := $(ARTIFACTS)/data/mnist.safetensors
STAMPS := $(ARTIFACTS)/.settings
THREAD_FLAG := $(if $(THREADS),--threads $(THREADS),)

model_files = $(foreach v,$(VARIANTS),$(ARTIFACTS)/$(1)/models/$(v).json)
MODELS := $(foreach s,$(SETS),$(call model_files,$(s)))
ATTACKS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/adversarial/fgsm/meta.json)
EVALS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/eval/meta.json)
ROBUSTS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/eval/robust_meta.json)
REPORT := $(ARTIFACTS)/report/index.html
# The report shows the robustness section of every set that has one: rebuilt when one
# appears or changes, and after the robust stage when that is asked for.
REPORT_ROBUST := $(if $(filter robust demo,$(MAKECMDGOALS)),$(ROBUSTS),$(wildcard $(ROBUSTS)))

.PHONY: all demo test setup build models attacks eval report robust toy bench clean-demo FORCE

all: models attacks eval report toy
	@echo "report: $(REPORT)"

setup:
	scripts/setup.sh

build: setup
	$(TORCH) cargo build --release --workspace

test: setup
	$(MAKE) --no-print-directory $(DATA)
	$(TORCH) cargo test --release --workspace

# Settings stamps: rewritten only when their text changes, so their mtime says
# "the settings of this stage changed". The device and thread count are not settings.
$(STAMPS)/train.txt: FORCE
	@mkdir -p $(@D)
	@echo 'epochs=$(EPOCHS) steps=$(STEPS) batch=$(BATCH) validation=$(VALIDATION) $(TRAIN_FLAGS)' | cmp -s - $@ || \
	  echo 'epochs=$(EPOCHS) steps=$(STEPS) batch=$(BATCH) validation=$(VALIDATION) $(TRAIN_FLAGS)' > $@
$(STAMPS)/attack.txt: FORCE
	@mkdir -p $(@D)
	@echo 'n=$(N_ADV) $(ATTACK_FLAGS)' | cmp -s - $@ || echo 'n=$(N_ADV) $(ATTACK_FLAGS)' > $@
$(STAMPS)/eval.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(EVAL_FLAGS)' | cmp -s - $@ || echo '$(EVAL_FLAGS)' > $@
$(STAMPS)/robust.txt: FORCE
	@mkdir -p $(@D)
	@echo 'n=$(ROBUST_N) $(ROBUST_FLAGS)' | cmp -s - $@ || echo 'n=$(ROBUST_N) $(ROBUST_FLAGS)' > $@

$(DATA): | build
	$(BIN)/dataset-prep --mnist-dir data/mnist --out $(ARTIFACTS)

models: $(MODELS)
attacks: $(ATTACKS)
eval: $(EVALS)

# One rule per set and variant, so `make -j` trains models side by side.
define MODEL_RULE
$(ARTIFACTS)/$(1)/models/$(2).json: $(DATA) $(STAMPS)/train.txt | build
	$(BIN)/trainer train --artifacts $(ARTIFACTS) --seed $(patsubst seed-%,%,$(1)) --variant $(2) \
	  --epochs $(EPOCHS) --steps $(STEPS) --batch $(BATCH) --validation $(VALIDATION) \
	  --device $(DEVICE) $(THREAD_FLAG) $(TRAIN_FLAGS)
endef
$(foreach s,$(SETS),$(foreach v,$(VARIANTS),$(eval $(call MODEL_RULE,$(s),$(v)))))

define SET_RULES
$(ARTIFACTS)/$(1)/adversarial/fgsm/meta.json: $(ARTIFACTS)/$(1)/models/base.json $(STAMPS)/attack.txt | build
	$(BIN)/adversary-gen fgsm --artifacts $(ARTIFACTS) --seed $(patsubst seed-%,%,$(1)) --n $(N_ADV) \
	  --device $(DEVICE) $(THREAD_FLAG) $(ATTACK_FLAGS)
$(ARTIFACTS)/$(1)/eval/meta.json: $(call model_files,$(1)) $(ARTIFACTS)/$(1)/adversarial/fgsm/meta.json \
	  $(STAMPS)/eval.txt | build
	$(BIN)/evaluator fgsm --artifacts $(ARTIFACTS) --seed $(patsubst seed-%,%,$(1)) --device $(DEVICE) \
	  $(THREAD_FLAG) $(EVAL_FLAGS)
$(ARTIFACTS)/$(1)/adversarial/robust/meta.json: $(call model_files,$(1)) $(STAMPS)/robust.txt | build
	$(BIN)/adversary-gen robust --artifacts $(ARTIFACTS) --seed $(patsubst seed-%,%,$(1)) --n $(ROBUST_N) \
	  --device $(DEVICE) $(THREAD_FLAG) $(ROBUST_FLAGS)
$(ARTIFACTS)/$(1)/eval/robust_meta.json: $(call model_files,$(1)) $(ARTIFACTS)/$(1)/adversarial/robust/meta.json | build
	$(BIN)/evaluator robust --artifacts $(ARTIFACTS) --seed $(patsubst seed-%,%,$(1)) --device $(DEVICE) $(THREAD_FLAG)
endef
$(foreach s,$(SETS),$(eval $(call SET_RULES,$(s))))

report: $(REPORT)
robust: $(ROBUSTS) $(REPORT)
$(REPORT): $(EVALS) $(REPORT_ROBUST) $(DATA) | build
	$(BIN)/report study --artifacts $(ARTIFACTS)

# The toy ramp study of the report's section 2 (about a minute on CPU).
TOY_FLAGS ?=
TOY_FIGS := $(ARTIFACTS)/report/toy/fig4_null_spaces.png
toy: $(TOY_FIGS)
$(ARTIFACTS)/ramp/%.json: $(STAMPS)/toy.txt | build
	$(BIN)/trainer ramp --artifacts $(ARTIFACTS) --variant $* --device $(DEVICE) $(THREAD_FLAG) $(TOY_FLAGS)
$(TOY_FIGS): $(ARTIFACTS)/ramp/base.json $(ARTIFACTS)/ramp/null.json | build
	$(BIN)/report toy --artifacts $(ARTIFACTS)
$(STAMPS)/toy.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(TOY_FLAGS)' | cmp -s - $@ || echo '$(TOY_FLAGS)' > $@

bench: build
	$(MAKE) --no-print-directory $(DATA)
	ARTIFACTS=$(ARTIFACTS) DEVICE=$(if $(filter auto,$(DEVICE)),cpu,$(DEVICE)) scripts/bench.sh

# The small end-to-end study of the README: one set, short training, 100 images, and
# the attacks beyond the report on 20 images with short PGD runs.
demo:
	$(MAKE) --no-print-directory all robust ARTIFACTS=artifacts/demo SEEDS=1 EPOCHS=2 STEPS=300 N_ADV=100 \
	  DEVICE=cpu ROBUST_N=20 ROBUST_FLAGS="--steps 20 --eps-step 0.1"

clean-demo:
	rm -rf artifacts/demo
