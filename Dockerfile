# Wicket: one image for every role (`wicket serve --role …`).
# The builder stage turns the source into a wheel; the image installs that wheel and
# copies nothing else from the checkout, so it runs exactly what `pip install` of a
# release runs (migrations included, as package data). tests/cli/test_wheel.py builds and
# installs the wheel the same way, and tests/cli/test_deployment_files.py holds this file to it.
FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY portal ./portal
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY --from=builder /dist/ /tmp/dist/
RUN pip install /tmp/dist/wicket-*.whl && rm -rf /tmp/dist \
    && useradd --system --home /app wicket && mkdir -p /app/var && chown wicket /app/var
WORKDIR /app
USER wicket
EXPOSE 2525 8080
CMD ["wicket", "serve"]
