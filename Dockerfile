# syntax=docker/dockerfile:1
# Build stage: wheels for persona-bot and its dependencies (PostgreSQL driver included).
FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY persona_store ./persona_store
COPY scheduler ./scheduler
RUN pip wheel --wheel-dir /wheels '.[postgres]'

# Runtime stage: only the installed wheels, run as an unprivileged user.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PERSONA_BOT_HOST=0.0.0.0 PERSONA_BOT_PORT=3978 \
    PERSONA_BOT_DATABASE_URL=sqlite:////data/persona-bot.db
RUN useradd --create-home --uid 10001 persona && mkdir /data && chown persona /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels 'persona-bot[postgres]' \
    && rm -rf /wheels
USER persona
WORKDIR /data
VOLUME /data
EXPOSE 3978
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3978/healthz', timeout=4).status == 200 else 1)"
# Migrations run on start (serve applies them), so a new image upgrades the schema itself.
CMD ["sh", "-c", "persona-bot migrate && exec persona-bot serve"]
