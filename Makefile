# `make run` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Everything `make test` needs (every extra, dev included); `make run` installs only the clinic.
STAMP := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-clinic
BROWSER_STAMP := $(VENV)/.browser-deps

# uv installs the versions in uv.lock, the ones CI tested. It comes from PyPI with pip, once per
# machine and version, into the user's cache beside uv's own (a fresh clone reuses it): `pip
# --target` needs neither a venv nor a writable system site (Debian's python3 is externally
# managed), and uv makes the venv itself. The temporary folder keeps a half-done copy unseen.
UV_VERSION := 0.13.9
UV_DIR ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sarcokit/uv-$(UV_VERSION)
UV := $(UV_DIR)/bin/uv
# The machine's Python, never one uv would download; every command reads the lock as it is.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
# Offline first, from uv's cache alone when it holds every locked file: a fresh clone then
# installs without asking the index again, which matters where responses come without cache
# headers (uv re-fetches them, and PySpark, an sdist only, would be rebuilt each time). Whatever
# the cache lacks, the second, online command fetches. `--locked`: a pyproject.toml changed
# without `make lock` stops with uv's "needs to be updated".
UV_SYNC = $(UV) sync --locked --offline --quiet $(1) 2>/dev/null || $(UV) sync --locked $(1)

.PHONY: run test assess browser-deps catalogues docs clean postgres-roles lock r-agreement

$(UV):
	rm -rf $(UV_DIR) $(UV_DIR).tmp
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
		--target $(UV_DIR).tmp uv==$(UV_VERSION)
	mv $(UV_DIR).tmp $(UV_DIR)

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(call UV_SYNC,--all-extras)
	touch $(STAMP)

# --inexact: a venv that already has the test extras keeps them.
$(RUN_STAMP): pyproject.toml uv.lock | $(UV)
	$(call UV_SYNC,--extra clinic --inexact)
	touch $(RUN_STAMP)

# Re-resolve uv.lock after a dependency changed in pyproject.toml; versions already locked stay
# unless UPGRADE=1 (then every package moves to its newest allowed version).
lock: | $(UV)
	$(UV) lock $(if $(UPGRADE),--upgrade)

# The clinic at http://127.0.0.1:8000 (SQLite under ./var; SARCOKIT_DATABASE_URL for PostgreSQL).
run: $(RUN_STAMP) $(BROWSER_STAMP)
	$(BIN)/sarcokit clinic serve --host 127.0.0.1 --port 8000

# PostgreSQL with two roles (see the README): the owner migrates; the clinic runs as a role
# that may only add to the audit log. Then:
#   SARCOKIT_DATABASE_URL=postgresql+psycopg://sarcokit_app@127.0.0.1:5432/sarcokit make run
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
postgres-roles: $(RUN_STAMP)
	psql "$(PG_ADMIN_URL)" -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE sarcokit_owner LOGIN" -c "CREATE ROLE sarcokit_app LOGIN" \
		-c "CREATE DATABASE sarcokit OWNER sarcokit_owner"
	SARCOKIT_DATABASE_URL=postgresql+psycopg://sarcokit_owner@127.0.0.1:5432/sarcokit \
		$(BIN)/sarcokit clinic migrate --grant-to sarcokit_app

# The command-line assessment of the example patients.
assess: $(RUN_STAMP)
	$(BIN)/sarcokit assess --json examples/patients.json --output terminal

# Debian packages: Chromium drives the browser tests, Pango renders the PDF report (WeasyPrint)
# and the CJK font shows Chinese pages and PDFs.
DEBIAN_PACKAGES := chromium fonts-wqy-microhei fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0

$(BROWSER_STAMP): | $(RUN_STAMP)
	@if ! dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			$(DEBIAN_PACKAGES) >/dev/null; \
	fi
	touch $(BROWSER_STAMP)

browser-deps: $(BROWSER_STAMP)

test: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest

catalogues: $(RUN_STAMP)
	$(BIN)/python -m sarcokit.web.catalogues

docs: $(RUN_STAMP)
	$(BIN)/sarcokit criteria markdown > docs/definitions.md
	$(BIN)/sarcokit fhir mappings > docs/fhir-mappings.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# R and the packages the statistics are checked against in the tests (metafor, lme4 for its
# GLMM, survival, survey), from Debian; needed by `make test` only.
R_PACKAGES := r-base-core r-cran-metafor r-cran-lme4 r-cran-survival r-cran-survey
R_STAMP := $(VENV)/.r-packages

$(R_STAMP): | $(STAMP)
	@if ! dpkg -s $(R_PACKAGES) >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
			$(R_PACKAGES) >/dev/null; \
	fi
	touch $(R_STAMP)

test: $(R_STAMP)

# The table of every number the statistics tests compare with R (sarcokit vs metafor, lme4,
# survival, survey on the same data), written from the assertions themselves.
r-agreement: $(STAMP) $(R_STAMP)
	SARCOKIT_R_AGREEMENT=docs/evidence/r-agreement.body.md $(BIN)/pytest -q \
		tests/test_stats_meta.py tests/test_stats_outcomes.py tests/test_cohort_outcomes.py \
		tests/test_meta_cli.py
	cat docs/evidence/r-agreement.head.md docs/evidence/r-agreement.body.md \
		> docs/evidence/r-agreement.md
	rm docs/evidence/r-agreement.body.md
