# syntax=docker/dockerfile:1
# The rules service under gunicorn (gunicorn.conf.py). README.md "Deployment" explains how to build and run it.
#
# Two stages: durable-rules 2.0.28 is published as source only and needs a C compiler (GCC 12; it does not
# build with GCC 14), so every wheel is built in `builder` and only the wheels reach the slim runtime image.
# The base is pinned by tag and digest (Debian bookworm, Python 3.11: durable-rules does not import on 3.13).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

FROM ${PYTHON_IMAGE}
# gunicorn listens on the container's loopback only: its sync workers are held by slow clients, so it is
# meant to be reached through nginx (deploy/compose.yaml runs nginx in this container's network namespace).
# GUNICORN_BIND=0.0.0.0:8000 opens it to the container network - only behind a buffering proxy.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RULESETS_DIR=/app/rulesets \
    INSTANCE_PATH=/app/instance \
    GUNICORN_BIND=127.0.0.1:8000
# A non-root user (numeric, so orchestrators can verify it) with a home directory: gunicorn keeps its
# control socket in $HOME/.gunicorn.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --create-home --home-dir /home/app --shell /usr/sbin/nologin app
WORKDIR /app
COPY requirements.txt .
# The wheels are bind-mounted from the builder, so they never become a layer of this image.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels -r requirements.txt
COPY gunicorn.conf.py ./
COPY service ./service
# The bundled rulesets; mount a folder over /app/rulesets (or point RULESETS_DIR at one) to replace them.
COPY rulesets ./rulesets
# The instance folder holds the SQLite decision log and the generated keys: writable by the service user
# and a volume, so the log outlives the container (or set DATABASE_URL for a shared PostgreSQL).
RUN mkdir -p /app/instance && chown app:app /app/instance && chmod 0700 /app/instance
VOLUME ["/app/instance"]
USER 10001:10001
EXPOSE 8000
# Slim images have no curl: Python asks /healthz on the port of the first GUNICORN_BIND address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('GUNICORN_BIND', '127.0.0.1:8000').split(',')[0].strip().rsplit(':', 1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "service:create_app()"]
