# Entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
CARGO ?= cargo
CRD_FILE := crds/apigatewayintegrations.apigw.dev.yaml
CHART_CRD_DIR := charts/apigw-operator/crds

.PHONY: test lint fmt crds build testenv-up testenv-down node-up image test-node testenv-leftovers test-unit demo demo-down test-ship golden bench test-faults test-faults-ci fuzz

## test: fmt --check, clippy -D warnings, then every test against a fresh test environment
test:
	hack/test.sh

## lint: rustfmt check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build

## crds: regenerate crds/ (and the chart's and deploy/'s copies) from the Rust types
crds:
	$(CARGO) run --quiet -- crd --out-dir crds
	cp crds/*.yaml $(CHART_CRD_DIR)/
	cp crds/*.yaml deploy/crds/

## testenv-up: start kube-apiserver, etcd and the API Gateway emulator; writes target/testenv/env.sh
testenv-up:
	hack/testenv-up.sh

## testenv-down: stop what testenv-up (or node-up) started
testenv-down:
	hack/testenv-down.sh

## node-up: testenv-up in node mode (TESTENV_NODE=1): also a controller-manager, a scheduler and two nodes (containerd + kubelet) on 127.0.0.1/127.0.0.2 where pods run
node-up:
	TESTENV_NODE=1 hack/testenv-up.sh

## image: the operator's OCI image from a static musl release build, no registry or engine (target/image/); imported into the nodes when they run
image:
	hack/build-image.sh

## test-node: tests/node, the operator as a pod from its own image (brings node mode up and down; make test runs it)
test-node:
	hack/test-node.sh

## testenv-leftovers: after testenv-down, check that node mode left no process, mount, cgroup, sysctl, iptables rule, link or netns
testenv-leftovers:
	hack/testenv-leftovers.sh

## test-unit: the Rust tests that need no environment (planner, CRD, CLI)
test-unit:
	$(CARGO) test --lib --test crd --test cli

## demo: build, start the test environment and the operator, apply examples/petstore.yaml, change it once
demo:
	hack/demo.sh

## demo-down: stop the demo's operator and the test environment
demo-down:
	if [ -f target/demo/operator.pid ]; then kill $$(cat target/demo/operator.pid) 2>/dev/null || true; rm -f target/demo/operator.pid; fi
	hack/testenv-down.sh

## test-ship: chart, kustomize base, Argo CD health, RBAC and image tests (after testenv-up)
test-ship:
	. target/testenv/env.sh && "$$(hack/emulator/setup-venv.sh)" -m pytest -q tests/ship

## golden: regenerate tests/ship/golden/ and deploy/{rbac,deployment,service}.yaml from the chart
golden:
	. target/testenv/env.sh && UPDATE_GOLDEN=1 "$$(hack/emulator/setup-venv.sh)" -m pytest -q tests/ship/test_chart.py tests/ship/test_deploy.py

## bench: N=1000 integrations across 10 REST APIs (BENCH_ARGS="-n 10000" for the big run); see docs/benchmarks.md
bench: testenv-up
	. target/testenv/env.sh && "$$(hack/emulator/setup-venv.sh)" bench/run.py $(BENCH_ARGS)

FAULT_CI_CASES := throttle_50 or sigkilled or api_server_restarted

## test-faults: the fault matrix, FAULT_OBJECTS (default 200) objects per case, every case
test-faults: testenv-up build
	. target/testenv/env.sh && FAULT_OBJECTS=$${FAULT_OBJECTS:-200} "$$(hack/emulator/setup-venv.sh)" -m pytest -q -s tests/faults

## test-faults-ci: the CI subset of the fault matrix (50 objects, 3 cases); make test runs it
test-faults-ci: testenv-up build
	. target/testenv/env.sh && FAULT_OBJECTS=$${FAULT_OBJECTS:-50} "$$(hack/emulator/setup-venv.sh)" -m pytest -q -s tests/faults -k "$(FAULT_CI_CASES)"

## fuzz: cargo-fuzz on the planner and the pointer escaping, FUZZ_SECONDS (200) per target
fuzz:
	fuzz/run.sh
