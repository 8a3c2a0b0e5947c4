# The commands people know. README, CI (.ci/run) and this file say the same things.
# Versions: requirements.txt (what we use) + constraints.txt (the full pinned lock).

PYTHON ?= $(shell command -v python3.10 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install browser nginx pgbouncer migrate train run shell validate test eval eval-safety bench load lint audit clean

# Create the virtualenv and install the pinned dependencies (again when the pins change).
install: $(STAMP)
$(STAMP): requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "pip==24.0" wheel
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip check
	$(BIN)/rasa telemetry disable >/dev/null 2>&1 || true
	touch $(STAMP)

# Debian's Chromium for the browser tests (a test tool never downloads a browser). apt-get
# waits up to 10 min for the dpkg lock (a new machine's own upgrades may hold it).
browser:
	@test -x /usr/bin/chromium || (apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null)

# Debian's nginx for the deployment layout test (tests/test_deploy_nginx.py runs it for real).
nginx:
	@test -x /usr/sbin/nginx || (apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq nginx >/dev/null)

# Debian's PgBouncer for the connection-pooler test (tests/storage/test_pgbouncer.py runs it).
pgbouncer:
	@test -x /usr/sbin/pgbouncer || (apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq pgbouncer >/dev/null)

# Create or upgrade the project's tables (SQLite under var/ unless DATABASE_URL is set).
migrate: install
	$(BIN)/python -m bot.storage.migrate

# Train only when data, domain or config changed since the last model (Rasa checks).
# bot.train pins threads, deterministic ops and the hash seed: two cold trainings agree.
train: install
	$(BIN)/python -m bot.train --fixed-model-name clinic

# Everything, on localhost: action server, Rasa (REST + socket.io + HTTP API with a token),
# the website demo with the chat widget, and the notification worker.
run: migrate train
	$(BIN)/python -m bot.run

# Chat in the terminal (starts the action server in the background).
shell: migrate train
	export ACTION_SERVER_SECRET="$${ACTION_SERVER_SECRET:-$$($(BIN)/python -m bot.action_auth)}"; \
	export ACTION_SERVER_URL="$${ACTION_SERVER_URL:-http://127.0.0.1:5055/webhook}"; \
	SANIC_HOST=127.0.0.1 $(BIN)/rasa run actions --actions actions --quiet & pid=$$!; \
	trap "kill $$pid" EXIT; sleep 8; $(BIN)/rasa shell --model models/clinic.tar.gz

validate: install
	$(BIN)/python -m bot.check
	$(BIN)/rasa data validate

# The whole test suite (trains the model once if needed).
test: install browser nginx pgbouncer train
	$(BIN)/python -m pytest

# NLU on the held-out split, then on the sets written unseen (tests/nlu/unseen: chat
# paraphrases and forum-style questions): accuracy, macro-F1 and the confusions.
eval: train
	$(BIN)/python -m bot.evaluate
	$(BIN)/python -m bot.evaluate --nlu tests/nlu/unseen/paraphrases.yml --out results/nlu-paraphrases
	$(BIN)/python -m bot.evaluate --nlu tests/nlu/unseen/forum_questions.yml --out results/nlu-forum

# Safety triage on the project's safety set (each message alone and at a form prompt):
# recall per category and tier, false alarms, screening rate; fails under recall 1.00 or
# above 2% false alarms. The development set is held to 0.98; the blind set (written unseen,
# never tuned on) is reported only.
eval-safety: train
	$(BIN)/python -m bot.evaluate_safety --set tests/safety/holdout.yml
	$(BIN)/python -m bot.evaluate_safety --set tests/safety/dev.yml --min-recall 0.98 --max-false-alarms 0.02
	$(BIN)/python -m bot.evaluate_safety --set tests/safety/blind.yml --min-recall 0 --max-false-alarms 1

# Speed and memory (not part of the tests): the parts alone, then the whole stack side by side
# with Rasa's own `rasa init` bot (bench/results/<date>.json). BENCH_ARGS="--training --nlu"
# adds cold/warm training and 5-fold cross-validation (about an hour on 2 cores).
bench: train
	$(BIN)/python -m bot.bench
	$(BIN)/python -m bot.bench_stack $(BENCH_ARGS)

# Load (not part of the tests): 50 conversations over REST and socket.io for 2 minutes, then
# every message, reply and booking counted in the store (bench/results/load-<date>.json).
# LOAD_ARGS="--postgres postgresql://postgres@127.0.0.1:5432/test" for PostgreSQL.
load: train
	$(BIN)/python -m bot.load $(LOAD_ARGS)

lint: install
	$(BIN)/ruff check bot actions tests
	$(BIN)/mypy bot actions

# Known vulnerabilities in the lock file (pip-audit in its own virtualenv: its dependencies
# do not fit Rasa's pins). Says plainly when no vulnerability database is reachable (exit 2).
AUDIT_VENV := .venv-audit
audit:
	@test -x $(AUDIT_VENV)/bin/pip-audit || { $(PYTHON) -m venv $(AUDIT_VENV) && \
	  $(AUDIT_VENV)/bin/pip install --quiet "pip-audit==2.7.3"; } || \
	  { echo "could not install pip-audit from PyPI"; exit 2; }
	@$(PYTHON) -m bot.audit --pip-audit $(AUDIT_VENV)/bin/pip-audit --requirements constraints.txt

clean:
	rm -rf results .pytest_cache
