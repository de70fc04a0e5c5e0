# The production image: a non-root user, nothing written outside /tmp and the data volume, so
# it runs with a read-only root filesystem. The schema is migrated in a separate step
# (`idp migrate`, a one-off container or a Kubernetes Job); the server then refuses a
# database that lacks this release's migrations instead of changing it.
#
#   docker build -t idp .
#   docker run --rm --env-file idp.env idp idp migrate
#   docker run --read-only --tmpfs /tmp --env-file idp.env -p 8000:8000 idp
#
# deploy/compose.yaml and deploy/kubernetes/ put these together with PostgreSQL.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
COPY openapi ./openapi
# The translations' catalogs compiled into the wheel (nothing may be written at run time).
RUN pip install --no-cache-dir "babel>=2.16" \
    && pybabel -q compile -d src/idp/locales -D messages \
    && pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=build /wheels /wheels
# Compiled at build time, since nothing may be written at run time.
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && python -m compileall -q "$(python -c 'import idp, pathlib; print(pathlib.Path(idp.__file__).parent)')" \
    && useradd --system --uid 10001 --user-group --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin idp \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/idp
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/idp
# The embedded SQLite default lives on the /var/lib/idp volume; production sets
# IDP_DATABASE_URL to PostgreSQL. TMPDIR holds the metrics of several workers.
ENV IDP_DATA_DIR=/var/lib/idp \
    IDP_DATABASE_URL=sqlite+aiosqlite:////var/lib/idp/idp.db \
    IDP_MIGRATE_ON_START=false \
    TMPDIR=/tmp
VOLUME ["/var/lib/idp"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=2).status == 200 else 1)"]
# One worker per core; override with `idp serve ... --workers N`.
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
