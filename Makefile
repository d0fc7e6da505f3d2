# Closeloop — the two commands are `make run` and `make test`; everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
VENDOR := src/closeloop/web/static/vendor
VENDOR_STAMP := $(VENDOR)/.installed-stamp
# one test process per core (pytest-xdist); each has its own var directory and test databases
PYTEST_ARGS ?= -n auto --dist loadfile

.PHONY: install run test check lint types bench clean browser libhs

install: $(STAMP) $(VENDOR_STAMP) libhs

# setup.py compiles the compliance plain path (mypyc) and the prefilter's scan (C): a changed source rebuilds them
$(STAMP): pyproject.toml setup.py src/closeloop/assistant/compliance/plain_path.py src/closeloop/assistant/compliance/_hsscan.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# the web workspace's front-end packages (pinned in package.json / package-lock.json), served from static/vendor
$(VENDOR_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/echarts/dist/echarts.min.js \
	   node_modules/sortablejs/Sortable.min.js node_modules/swagger-ui-dist/swagger-ui-bundle.js \
	   node_modules/swagger-ui-dist/swagger-ui.css $(VENDOR)/
	@touch $(VENDOR_STAMP)

## libhs: the system's Hyperscan library for the compliance prefilter's scan (installed once per .venv when
## missing and we may; without it the checker scans through the python-hyperscan binding, finding the same, more slowly)
libhs: $(VENV)/.libhs-tried

$(VENV)/.libhs-tried:
	@$(PYTHON) -c "import ctypes; ctypes.CDLL('libhs.so.5')" 2>/dev/null || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q libvectorscan5 >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libvectorscan5 >/dev/null 2>&1; } || \
	      echo "libvectorscan5 could not be installed: the compliance checker scans more slowly"; \
	    else echo "For the compliance checker's faster scan: apt-get install libvectorscan5 (or libhyperscan5)"; fi; }
	@mkdir -p $(VENV) && touch $@

## browser: Debian's chromium and a Chinese font for the UI tests (installed when missing and we may)
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei" || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null || \
	      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei >/dev/null; }; \
	    else echo "The UI tests need Debian's chromium and fonts-wqy-microhei: apt-get install chromium fonts-wqy-microhei"; fi; }

## run: set up, migrate, seed the demo organization when the database is empty, serve on :8000 with a worker
run: install
	$(BIN)/closeloop migrate
	$(BIN)/closeloop demo --if-empty
	$(BIN)/closeloop serve --with-worker

## test: set up, check style and types, run the whole suite (SQLite, and PostgreSQL when configured)
test: install check browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: lint types

lint: install
	$(BIN)/ruff check src tests bench migrations
	$(BIN)/lint-imports

types: install
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run_all.py

clean:
	find src -name "*.so" -delete
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache artifacts node_modules $(VENDOR)
