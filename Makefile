# Two entry points for a newcomer: `make demo` and `make test`. Everything else is a step.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATASET ?= movielens-100k
PORT ?= 8501

.PHONY: demo test test-fast setup setup-dev browser first-page data lint bench

# The first page needs the default dataset, its embeddings and the default detector's fit only:
# the dashboard opens as soon as those are there, while `make data` builds the rest (the
# synthetic world, the maps, every other detector's results) in the background, at low
# priority; its log is data/make-data.log.
demo: setup first-page
	nohup nice -n 10 $(MAKE) --no-print-directory data > data/make-data.log 2>&1 &
	$(PY) -m streamlit run app.py --server.port $(PORT)

test: setup-dev browser
	$(PY) -m pytest

# The inner loop: everything but the real-model, real-dataset, UMAP and browser tests.
test-fast: setup-dev
	$(PY) -m pytest -m "not slow and not browser"

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

setup: $(VENV)/.runtime

setup-dev: $(VENV)/.dev

# Debian's Chromium drives the real-browser test (Playwright's own download is not used).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

first-page: setup
	test -f data/$(DATASET).duckdb || $(PY) -m core ingest $(DATASET)
	$(PY) -m core encode $(DATASET)
	$(PY) -m core detect $(DATASET) --out data/exports/$(DATASET)-change_points.csv

# The default dataset, its embeddings, its projection and every detector's fit; each step is
# cached and cheap to rerun.
data: setup
	test -f data/$(DATASET).duckdb || $(PY) -m core ingest $(DATASET)
	test -f data/synthetic.duckdb || $(PY) -m core ingest synthetic
	$(PY) -m core encode $(DATASET)
	$(PY) -m core encode synthetic
	$(PY) -m core project $(DATASET)
	$(PY) -m core project synthetic
	$(PY) -m core detect $(DATASET) --out data/exports/$(DATASET)-change_points.csv
	$(PY) -m core detect synthetic --out data/exports/synthetic-change_points.csv
	# Every other detector's fit too, so choosing one in the dashboard never waits for it.
	for d in $$($(PY) -c "from core.detectors import detector_names; print(*detector_names()[1:])"); do \
		$(PY) -m core detect $(DATASET) --detector $$d --out data/exports/$(DATASET)-change_points-$$d.csv || exit 1; \
		$(PY) -m core detect synthetic --detector $$d --out data/exports/synthetic-change_points-$$d.csv || exit 1; \
	done

lint: setup-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
