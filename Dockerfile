# syntax=docker/dockerfile:1
# The assistant's image: every Python process of the product (Rasa server, action server,
# notification worker, widget/demo site, staff console, migrations) runs from it with a
# different command (compose.yaml, README "Deployment").
#
# Base pinned to an exact tag (Python 3.10, Debian 12); pin the digest in your registry
# mirror with `docker buildx imagetools inspect python:3.10.19-slim-bookworm` and
# FROM python:3.10.19-slim-bookworm@sha256:<digest>.
# Packages come only from PyPI (requirements.txt + the constraints.txt lock), so the image
# builds where only the package registries are reachable.
ARG PYTHON_IMAGE=python:3.10.19-slim-bookworm

# --- build: a virtualenv with the pinned dependencies --------------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt constraints.txt ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install "pip==24.0" wheel \
 && /opt/venv/bin/pip install -r requirements.txt -c constraints.txt \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/rasa telemetry disable

# --- runtime: the code, a non-root user, no compilers ---------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SQLALCHEMY_SILENCE_UBER_WARNING=1 TF_CPP_MIN_LOG_LEVEL=2 RASA_TELEMETRY_ENABLED=false \
    BOT_ENV=production BOT_DATA_DIR=/app/var
RUN groupadd --system --gid 10001 clinic \
 && useradd --system --uid 10001 --gid clinic --home-dir /app --shell /usr/sbin/nologin clinic
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=root:root alembic.ini config.yml domain.yml endpoints.yml credentials.yml ./
COPY --chown=root:root bot ./bot
COPY --chown=root:root actions ./actions
COPY --chown=root:root rasa_sdk_plugins ./rasa_sdk_plugins
COPY --chown=root:root data ./data
# The trained model is mounted at /app/models (compose.yaml) or built in (target `trained`).
RUN mkdir -p /app/var /app/models /app/.rasa && chown clinic:clinic /app/var /app/models /app/.rasa
USER clinic
EXPOSE 5005 5055 8080 8090
HEALTHCHECK --interval=30s --timeout=6s --start-period=300s --retries=3 \
  CMD ["python", "-m", "bot.healthcheck", "http://127.0.0.1:5005/"]
CMD ["python", "-m", "bot.rasa_server", "run", "--enable-api", "-i", "0.0.0.0", "-p", "5005", \
     "--model", "models/clinic.tar.gz", "--credentials", "credentials.yml", "--endpoints", "endpoints.yml"]

# --- trained: the runtime image with the model built in (docker build --target trained) ----
FROM runtime AS trained
RUN rasa train --fixed-model-name clinic --out models

# The default target is the runtime image (the model comes from the models volume).
FROM runtime
