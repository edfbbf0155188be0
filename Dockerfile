# capability-host: slim, non-root, `host serve` as entrypoint, with a health check.
#   docker build -t capability-host .
#   docker run -p 8080:8080 -p 9090:9090 -e HOST_API_KEY=$(openssl rand -hex 32) capability-host
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY host ./host
COPY plugins ./plugins
RUN pip wheel --no-cache-dir --wheel-dir /wheels . ./plugins/tratta_customer_sessions

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin host
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY deploy/host.toml /etc/capability-host/host.toml
USER 10001
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
ENTRYPOINT ["host"]
CMD ["serve", "--config", "/etc/capability-host/host.toml"]
