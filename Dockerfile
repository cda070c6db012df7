# Wicket: one image for every role (`wicket serve --role …`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md alembic.ini ./
COPY gateway ./gateway
COPY portal ./portal
COPY migrations ./migrations
COPY fixtures ./fixtures
RUN pip install . && useradd --system --home /app wicket && mkdir -p /app/var && chown wicket /app/var

USER wicket
EXPOSE 2525 8080
CMD ["wicket", "serve"]
