# The two commands of the README. Both set everything up first (idempotent; seconds once done).
.PHONY: demo test setup setup-dev

setup:
	bash scripts/setup.sh

setup-dev:
	bash scripts/setup.sh --dev

# The main job: demo corpus -> train tiny_demo on the CPU -> evaluate -> Hub-ready folder -> a verdict.
demo: setup
	bash scripts/demo.sh

# The test suite, offline (HF_HUB_OFFLINE=1), browser tests in Debian's chromium included.
test: setup-dev
	.venv/bin/python -m pytest -q --timeout 900 $(PYTEST_ARGS)
