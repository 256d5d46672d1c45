# Pochta for a shared lab instance: gunicorn (threaded workers) running the installed wheel
# as an unprivileged user, with the store and the generated secret key on the /data volume.
#
#   docker build -t pochta .
#   docker run -d --name pochta -p 127.0.0.1:8000:8000 -v pochta-data:/data pochta
#
# Settings are POCHTA_* environment variables (see "Deploy for your lab" in README.md).
# tests/deploy/ lints this file, runs its CMD outside a container and checks the wheel.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: the project's wheel (with whatever its build step produces, e.g. compiled
# message catalogues) and the wheels of its dependencies. Nothing of this stage is kept.
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY . .
RUN python -m pip wheel --no-cache-dir --disable-pip-version-check --wheel-dir /wheels .

# ---- run: the wheels installed from the build stage's directory, mounted for this one
# step only, so neither the wheels nor a pip cache nor a compiler ends up in the image.
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    POCHTA_DATA_DIR=/data \
    POCHTA_BIND=0.0.0.0:8000

RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --disable-pip-version-check \
        --find-links=/wheels /wheels/pochta-*.whl \
    && groupadd --system --gid 10001 pochta \
    && useradd --system --no-log-init --uid 10001 --gid pochta \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin pochta \
    && install --directory --owner=pochta --group=pochta --mode=0700 /data \
    && install --directory --mode=0755 /srv/pochta

# gunicorn puts its working directory on sys.path: an empty one the app cannot write to.
WORKDIR /srv/pochta
VOLUME ["/data"]
EXPOSE 8000
USER 10001:10001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ['POCHTA_BIND'].rpartition(':')[2]; body = urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=3).read(); raise SystemExit(body.strip() != b'ok')"]

# gunicorn is PID 1 and gets `docker stop`'s SIGTERM itself: it finishes the requests in
# flight (POCHTA_GRACEFUL_TIMEOUT) and exits. It binds to POCHTA_BIND (app/gunicorn_conf.py).
CMD ["gunicorn", "--config", "python:app.gunicorn_conf", "app:create_app()"]
