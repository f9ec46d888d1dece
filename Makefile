# `make run` and `make test` each set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BROWSER_STAMP := $(VENV)/.browser-deps

.PHONY: run test assess browser-deps catalogues docs clean postgres-roles

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The clinic at http://127.0.0.1:8000 (SQLite under ./var; SARCOKIT_DATABASE_URL for PostgreSQL).
run: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/sarcokit clinic serve --host 127.0.0.1 --port 8000

# PostgreSQL with two roles (see the README): the owner migrates; the clinic runs as a role
# that may only add to the audit log. Then:
#   SARCOKIT_DATABASE_URL=postgresql+psycopg://sarcokit_app@127.0.0.1:5432/sarcokit make run
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
postgres-roles: $(STAMP)
	psql "$(PG_ADMIN_URL)" -v ON_ERROR_STOP=1 \
		-c "CREATE ROLE sarcokit_owner LOGIN" -c "CREATE ROLE sarcokit_app LOGIN" \
		-c "CREATE DATABASE sarcokit OWNER sarcokit_owner"
	SARCOKIT_DATABASE_URL=postgresql+psycopg://sarcokit_owner@127.0.0.1:5432/sarcokit \
		$(BIN)/sarcokit clinic migrate --grant-to sarcokit_app

# The command-line assessment of the example patients.
assess: $(STAMP)
	$(BIN)/sarcokit assess --json examples/patients.json --output terminal

# Debian packages: Chromium drives the browser tests, Pango renders the PDF report (WeasyPrint)
# and the CJK font shows Chinese pages and PDFs.
DEBIAN_PACKAGES := chromium fonts-wqy-microhei fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0

$(BROWSER_STAMP): | $(STAMP)
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

catalogues: $(STAMP)
	$(BIN)/python -m sarcokit.web.catalogues

docs: $(STAMP)
	$(BIN)/sarcokit criteria markdown > docs/definitions.md

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
