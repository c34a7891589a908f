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
ifeq ($(filter grouped-target,$(.FEATURES)),)
$(error this Makefile needs GNU make 4.3 or newer (grouped targets, &:); this is $(MAKE_VERSION))
endif

# mnist (the report's study) or fashion-mnist. Each data set's study has its own
# root: MNIST's is ARTIFACTS_BASE itself (the layout from before there was a second
# data set), Fashion-MNIST's is ARTIFACTS_BASE/fashion-mnist, so the two live side
# by side and each one's report links a comparison page once both exist.
DATASET ?= mnist
ifeq ($(filter mnist fashion-mnist,$(DATASET)),)
$(error DATASET=$(DATASET): must be mnist or fashion-mnist)
endif
ARTIFACTS_BASE ?= artifacts
study_root = $(ARTIFACTS_BASE)$(if $(filter fashion-mnist,$(1)),/fashion-mnist,)
ARTIFACTS ?= $(call study_root,$(DATASET))
# The other data set's study, for the comparison page (used when its scores exist).
OTHER_DATASET := $(if $(filter mnist,$(DATASET)),fashion-mnist,mnist)
OTHER_ARTIFACTS ?= $(call study_root,$(OTHER_DATASET))
SEEDS ?= 1
EPOCHS ?= 20
STEPS ?= 1875
BATCH ?= 32
# auto, cpu, cuda, cuda:N, or cuda:all: the groups spread round-robin over GPUS GPUs
# (every GPU nvidia-smi lists, by default); run make -jGPUS to use them all at once.
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
# The radii that fit the data set: up to 0.3 on MNIST (its standard), up to 0.2 on
# Fashion-MNIST (commonly attacked at 0.1 and 0.2; at 0.3 the classes themselves blur).
ROBUST_EPS_MAX ?= $(if $(filter fashion-mnist,$(DATASET)),0.2,0.3)
# Where the four IDX files are (or go): data/DATASET; MNIST_DIR is the older name.
MNIST_DIR ?= data/mnist
DATA_DIR ?= $(if $(filter mnist,$(DATASET)),$(MNIST_DIR),data/$(DATASET))
# Prebuilt tools: BIN=DIR runs the tools found there and builds nothing (NO_BUILD=1
# is implied; NO_BUILD=1 alone uses target/release as it is). No cargo, no setup.sh:
# a python3 with torch 2.11 is all the machine needs (libtorch comes from it).
BIN ?= target/release
NO_BUILD ?= $(if $(filter-out target/release,$(BIN)),1,)

# glibc otherwise returns and re-faults the big activation buffers every step
# (toolchain.md): a free ~20 % on CPU.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184

TORCH := scripts/with-torch.sh
ifeq ($(NO_BUILD),)
TOOLS := build
else
TOOLS := tools-check
# The venv's torch when there is one, else python3's; found without importing torch.
PYTHON ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
TORCH_LIB := $(shell $(PYTHON) -c 'import importlib.util as u, os; s = u.find_spec("torch"); print(os.path.join(os.path.dirname(s.origin), "lib") if s else "")' 2>/dev/null)
export LD_LIBRARY_PATH := $(TORCH_LIB)$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
endif

whole_number = $(if $(shell [[ '$(2)' =~ ^[1-9][0-9]*$$ ]] && echo y),,$(error $(1)=$(2): must be a whole number >= 1))
$(call whole_number,SEEDS,$(SEEDS))

# Which device the groups run on. auto counts as a GPU when nvidia-smi lists one.
ifeq ($(DEVICE),cuda:all)
ifeq ($(origin GPUS),undefined)
GPUS := $(shell nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
endif
$(if $(filter-out 0,$(GPUS)),,$(error DEVICE=cuda:all: nvidia-smi lists no GPU; set GPUS=N))
$(call whole_number,GPUS,$(GPUS))
ON_GPU := 1
else ifneq ($(filter cuda%,$(DEVICE)),)
ON_GPU := 1
else ifeq ($(DEVICE),auto)
ON_GPU := $(if $(shell nvidia-smi -L 2>/dev/null | grep '^GPU'),1,)
endif
# Sets per trainer process (TRAIN_SETS) and per attack/scoring process (STAGE_SETS).
# On a GPU one process stacks them all (an equal share per GPU with cuda:all): one
# model at batch 32 leaves a GPU idle. On the CPU one set per process, so that make
# -j runs sets side by side (a wider stack is no faster there).
ifeq ($(origin TRAIN_SETS),undefined)
TRAIN_SETS := $(if $(ON_GPU),$(if $(GPUS),$(shell echo $$(( ($(SEEDS) + $(GPUS) - 1) / $(GPUS) ))),$(SEEDS)),1)
endif
STAGE_SETS ?= $(TRAIN_SETS)
$(call whole_number,TRAIN_SETS,$(TRAIN_SETS))
$(call whole_number,STAGE_SETS,$(STAGE_SETS))

VARIANTS := base u s m us um sm usm
SETS := $(shell seq -f 'seed-%02g' 0 $$(( $(SEEDS) - 1 )))
DATA := $(ARTIFACTS)/data/$(DATASET).safetensors
STAMPS := $(ARTIFACTS)/.settings
THREAD_FLAG := $(if $(THREADS),--threads $(THREADS),)

model_files = $(foreach v,$(VARIANTS),$(ARTIFACTS)/$(1)/models/$(v).json)
MODELS := $(foreach s,$(SETS),$(call model_files,$(s)))
ATTACKS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/adversarial/fgsm/meta.json)
EVALS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/eval/meta.json)
ROBUSTS := $(foreach s,$(SETS),$(ARTIFACTS)/$(s)/eval/robust_meta.json)
REPORT := $(ARTIFACTS)/report/index.html
CORNERS := $(ARTIFACTS)/geometry/corners.csv
# The other data set's study, when its scores exist: the report adds a comparison page.
COMPARE := $(if $(wildcard $(OTHER_ARTIFACTS)/seed-00/eval/meta.json),$(OTHER_ARTIFACTS),)
# The report shows the robustness section of every set that has one: rebuilt when one
# appears or changes, and after the robust stage when that is asked for.
REPORT_ROBUST := $(if $(filter robust demo,$(MAKECMDGOALS)),$(ROBUSTS),$(wildcard $(ROBUSTS)))

# Groups of sets: $(call groups,SIZE) gives FIRST:COUNT words covering 0..SEEDS-1.
groups = $(shell for ((i = 0; i < $(SEEDS); i += $(1))); do echo $$i:$$(( $(SEEDS) - i < $(1) ? $(SEEDS) - i : $(1) )); done)
group_sets = $(shell seq -f 'seed-%02g' $(1) $$(( $(1) + $(2) - 1 )))
# A group's device: with cuda:all, group number FIRST/SIZE round-robin over the GPUs.
group_device = $(if $(filter cuda:all,$(DEVICE)),cuda:$(shell echo $$(( $(1) / $(2) % $(GPUS) ))),$(DEVICE))
group_files = $(foreach s,$(call group_sets,$(1),$(2)),$(ARTIFACTS)/$(s)/$(3))
group_models = $(foreach s,$(call group_sets,$(1),$(2)),$(call model_files,$(s)))

.PHONY: all demo test setup build tools-check models attacks eval report robust toy bench \
  check-gpu-script gpu-pack clean-demo FORCE
# A model's files are written atomically, JSON last: a JSON on disk is a complete
# model even when its group's run failed later (one model diverged), so keep it.
.PRECIOUS: $(MODELS)

# The toy ramp study has no data set: it runs with the MNIST study only.
all: models attacks eval report $(if $(filter mnist,$(DATASET)),toy,)
	@echo "report: $(REPORT)"

setup:
	scripts/setup.sh

build: setup
	$(TORCH) cargo build --release --workspace

# NO_BUILD: the tools must be in BIN and find every library they link.
tools-check:
	@for t in dataset-prep trainer adversary-gen evaluator report; do \
	  [ -x "$(BIN)/$$t" ] || { echo "make: $(BIN)/$$t missing (NO_BUILD=1 takes the five tools from BIN=$(BIN))" >&2; exit 1; }; \
	  if ldd "$(BIN)/$$t" | grep -q 'not found'; then \
	    echo "make: $(BIN)/$$t cannot find its libraries (LD_LIBRARY_PATH from $(PYTHON)'s torch: '$(TORCH_LIB)'):" >&2; \
	    ldd "$(BIN)/$$t" | grep 'not found' >&2; exit 1; fi; \
	done

test: setup
	$(MAKE) --no-print-directory $(call study_root,mnist)/data/mnist.safetensors DATASET=mnist
	@# Fashion-MNIST's tests skip, saying so, where its files cannot be had.
	$(MAKE) --no-print-directory $(call study_root,fashion-mnist)/data/fashion-mnist.safetensors DATASET=fashion-mnist || \
	  echo "make test: WARNING: no Fashion-MNIST (see data/fashion-mnist/README.md); its tests will skip" >&2
	$(TORCH) cargo test --release --workspace
	$(MAKE) --no-print-directory check-gpu-script

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
# The robust stamp also holds adversary-gen's default budgets and APGD's loss
# families (NAME=value, NAME=a,b,... from nullclass::attack_budget), so that stronger
# defaults or a larger ensemble rerun the stage.
ROBUST_DEFAULTS := $(shell sed -n -e 's/^pub const \([A-Z_0-9]*\): [a-z0-9]* = \([0-9_]*\);$$/\1=\2/p' \
  -e 's/^pub const \([A-Z_0-9]*\): \[&str; [0-9]*\] = \[\(.*\)\];$$/\1=\2/p' crates/nullclass/src/attack_budget.rs | tr -d '" ')
$(STAMPS)/robust.txt: FORCE
	@mkdir -p $(@D)
	@echo 'n=$(ROBUST_N) eps_max=$(ROBUST_EPS_MAX) $(ROBUST_FLAGS) defaults: $(ROBUST_DEFAULTS)' | cmp -s - $@ || \
	  echo 'n=$(ROBUST_N) eps_max=$(ROBUST_EPS_MAX) $(ROBUST_FLAGS) defaults: $(ROBUST_DEFAULTS)' > $@

$(DATA): | $(TOOLS)
	scripts/fetch-$(DATASET).sh $(DATA_DIR)
	$(BIN)/dataset-prep --dataset $(DATASET) --source-dir $(DATA_DIR) --out $(ARTIFACTS)

models: $(MODELS)
attacks: $(ATTACKS)
eval: $(EVALS)

# One trainer process per group of TRAIN_SETS sets, all its models in one stack: a
# grouped target (&:), so one run makes every model of the group, and make -j runs
# groups side by side. --only-stale trains only the models that make would rebuild
# (missing, or older than the data or the settings stamp): delete one model's files
# and that model alone is retrained, to the same weights it got inside the stack.
define MODELS_RULE
$(call group_models,$(1),$(2)) &: $(DATA) $(STAMPS)/train.txt | $(TOOLS)
	$(BIN)/trainer train-set --artifacts $(ARTIFACTS) --seed $(1) --sets $(2) \
	  --only-stale --depends-on $(STAMPS)/train.txt \
	  --epochs $(EPOCHS) --steps $(STEPS) --batch $(BATCH) --validation $(VALIDATION) \
	  --device $(3) $(THREAD_FLAG) $(TRAIN_FLAGS)
endef

# The later stages, one process per group of STAGE_SETS sets (sets FIRST..FIRST+COUNT-1,
# the same files as one run per set).
define STAGE_RULES
$(call group_files,$(1),$(2),adversarial/fgsm/meta.json) &: $(call group_files,$(1),$(2),models/base.json) \
	  $(STAMPS)/attack.txt | $(TOOLS)
	$(BIN)/adversary-gen fgsm --artifacts $(ARTIFACTS) --seed $(1) --sets $(2) --n $(N_ADV) \
	  --device $(3) $(THREAD_FLAG) $(ATTACK_FLAGS)
$(call group_files,$(1),$(2),eval/meta.json) &: $(call group_models,$(1),$(2)) \
	  $(call group_files,$(1),$(2),adversarial/fgsm/meta.json) $(STAMPS)/eval.txt | $(TOOLS)
	$(BIN)/evaluator fgsm --artifacts $(ARTIFACTS) --seed $(1) --sets $(2) \
	  --device $(3) $(THREAD_FLAG) $(EVAL_FLAGS)
$(call group_files,$(1),$(2),adversarial/robust/meta.json) &: $(call group_models,$(1),$(2)) \
	  $(STAMPS)/robust.txt | $(TOOLS)
	$(BIN)/adversary-gen robust --artifacts $(ARTIFACTS) --seed $(1) --sets $(2) --n $(ROBUST_N) \
	  --eps-max $(ROBUST_EPS_MAX) --device $(3) $(THREAD_FLAG) $(ROBUST_FLAGS)
$(call group_files,$(1),$(2),eval/robust_meta.json) &: $(call group_models,$(1),$(2)) \
	  $(call group_files,$(1),$(2),adversarial/robust/meta.json) | $(TOOLS)
	$(BIN)/evaluator robust --artifacts $(ARTIFACTS) --seed $(1) --sets $(2) \
	  --device $(3) $(THREAD_FLAG)
endef

# $(call each_group,RULE,SIZE): RULE for every group, with FIRST, COUNT and the device.
group_first = $(word 1,$(subst :, ,$(1)))
group_count = $(word 2,$(subst :, ,$(1)))
each_group = $(foreach g,$(call groups,$(2)),$(eval $(call $(1),$(call group_first,$(g)),$(call group_count,$(g)),$(call group_device,$(call group_first,$(g)),$(2)))))
$(call each_group,MODELS_RULE,$(TRAIN_SETS))
$(call each_group,STAGE_RULES,$(STAGE_SETS))

report: $(REPORT)
robust: $(ROBUSTS) $(REPORT)
$(REPORT): $(EVALS) $(REPORT_ROBUST) $(ARTIFACTS)/nulls/nulls_meta.json $(CORNERS) \
	  $(if $(COMPARE),$(wildcard $(COMPARE)/seed-*/eval/meta.json $(COMPARE)/geometry/corners.csv)) | $(TOOLS)
	$(BIN)/report study --artifacts $(ARTIFACTS)$(if $(COMPARE), --compare-with $(COMPARE))
# How near clean images, mixed nulls and threshold images lie to the hypercube's corners.
$(CORNERS): $(ATTACKS) $(ARTIFACTS)/nulls/nulls_meta.json | $(TOOLS)
	$(BIN)/evaluator corners --artifacts $(ARTIFACTS)
# Figure 5's null samples, from the training generator (those of seed-00/usm).
$(ARTIFACTS)/nulls/nulls_meta.json: $(DATA) | $(TOOLS)
	$(BIN)/trainer nulls --artifacts $(ARTIFACTS) --types usm --count 320 --out $(ARTIFACTS)/nulls

# The toy ramp study of the report's section 2 (about a minute on CPU).
TOY_FLAGS ?=
TOY_FIGS := $(ARTIFACTS)/report/toy/fig4_null_spaces.png
toy: $(TOY_FIGS)
$(ARTIFACTS)/ramp/%.json: $(STAMPS)/toy.txt | $(TOOLS)
	$(BIN)/trainer ramp --artifacts $(ARTIFACTS) --variant $* --device $(firstword $(call group_device,0,1)) $(THREAD_FLAG) $(TOY_FLAGS)
# The null model continues the trained baseline (published protocol; TOY_FLAGS=--start fresh to not).
$(ARTIFACTS)/ramp/null.json: $(ARTIFACTS)/ramp/base.json
$(TOY_FIGS): $(ARTIFACTS)/ramp/base.json $(ARTIFACTS)/ramp/null.json | $(TOOLS)
	$(BIN)/report toy --artifacts $(ARTIFACTS)
$(STAMPS)/toy.txt: FORCE
	@mkdir -p $(@D)
	@echo '$(TOY_FLAGS)' | cmp -s - $@ || echo '$(TOY_FLAGS)' > $@

bench: $(TOOLS)
	$(MAKE) --no-print-directory $(DATA)
	ARTIFACTS=$(ARTIFACTS) BIN=$(BIN) DEVICE=$(if $(filter auto,$(DEVICE)),cpu,$(call group_device,0,1)) scripts/bench.sh

# The bundle that scripts/gpu-check.sh runs from on a GPU machine without Rust:
# stripped, compressed tools and gzipped MNIST under target/gpu-bundle (<= 64 MiB).
gpu-pack: $(TOOLS)
	BIN=$(BIN) MNIST_DIR=$(MNIST_DIR) scripts/pack-gpu.sh target/gpu-bundle

# The GPU check's CPU dry run (tiny settings, every step, from the packed bundle), so
# that the script cannot rot between GPU sessions. A minute or two on 2 cores.
check-gpu-script: gpu-pack
	rm -rf $(ARTIFACTS)/gpu-check-dry
	GPU_CHECK_TINY=1 GPU_BUNDLE=target/gpu-bundle scripts/gpu-check.sh $(ARTIFACTS)/gpu-check-dry

# The small end-to-end study of the README: one set, short training, 100 images, and
# the attacks beyond the report on 20 images with short PGD runs.
demo:
	$(MAKE) --no-print-directory all robust ARTIFACTS_BASE=artifacts/demo SEEDS=1 EPOCHS=2 STEPS=300 N_ADV=100 \
	  DEVICE=cpu ROBUST_N=20 ROBUST_FLAGS="--steps 20 --eps-step 0.1 --apgd-n-iter 20 --apgd-n-restarts 1 --square-n-queries 200"

clean-demo:
	rm -rf artifacts/demo
