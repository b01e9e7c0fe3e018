# syntax=docker/dockerfile:1
# Build a wheel in one stage, install it into a slim runtime as a non-root user in the next.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY examples ./examples
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 prefill && mkdir /data && chown prefill /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER prefill
WORKDIR /home/prefill
# Without PREFILL_REDIS_URL the container runs its own embedded Redis with data in /data.
# The admin API (and /metrics) is served only on PREFILL_ADMIN_PORT, never on the public 8000.
# Secrets: PREFILL_SECRET_KEYS_FILE (and PREFILL_REDIS_URL_FILE) name mounted secret files.
ENV PREFILL_DATA_DIR=/data \
    PREFILL_ADMIN_PORT=8081 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
# 8000: the public pages and widget API. 8081: the admin API, internal only: publish it on a
# private network or on 127.0.0.1, never to the internet.
EXPOSE 8000 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=2).status == 200 else 1)"]
CMD ["prefill", "serve", "--host", "0.0.0.0", "--port", "8000"]
