# Production image: migrates the database and serves. Configure with IDP_* variables, e.g.
#   docker run -e IDP_ISSUER=https://login.example.com \
#              -e IDP_DATABASE_URL=postgresql+asyncpg://idp:...@db/idp \
#              -e IDP_KEY_ENCRYPTION_SECRET=... -p 8000:8000 idp
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md alembic.ini ./
COPY src ./src
COPY migrations ./migrations
COPY openapi ./openapi
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/idp --create-home idp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER idp
WORKDIR /var/lib/idp
ENV IDP_DATA_DIR=/var/lib/idp \
    IDP_DATABASE_URL=sqlite+aiosqlite:////var/lib/idp/idp.db \
    PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/ready').status == 200 else 1)"
# `idp serve` runs the migrations and creates signing keys on first start.
CMD ["idp", "serve", "--host", "0.0.0.0", "--port", "8000"]
