# The agent service image (the default, last stage) and the test image (target "test").
#   docker build -t wa-agent-service .
#   docker compose -f docker-compose.test.yml up --build --exit-code-from tests tests
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies from the locks (docs/supply-chain.md): exact versions, every file checked against
# its sha256, wheels only. Before the code, so that a code change reuses this layer.
COPY requirements/build.txt requirements/service.txt requirements/
RUN pip install --require-hashes --only-binary :all: -r requirements/build.txt \
    && pip install --require-hashes --only-binary :all: -r requirements/service.txt
# Only what the package needs: no .venv, caches or node_modules from the build context.
COPY pyproject.toml README.md ./
COPY agent_service agent_service
COPY harness harness
COPY fakes fakes
# No dependencies and no build isolation: all of them, setuptools included, came from the locks.
RUN pip install --no-deps --no-build-isolation . \
    && useradd --create-home --uid 10001 app

# pytest -m e2e against the compose file's RabbitMQ (HARNESS_BROKER=external).
FROM base AS test
# Headless Chromium opens the HTML report in tests/e2e/test_html_report.py.
RUN apt-get update \
    && apt-get install -y --no-install-recommends chromium chromium-driver \
    && rm -rf /var/lib/apt/lists/*
COPY requirements/test.txt requirements/
RUN pip install --require-hashes --only-binary :all: -r requirements/test.txt
COPY tests tests
COPY contracts contracts
COPY loadtests loadtests
USER app
CMD ["pytest", "-m", "e2e", "-p", "no:cacheprovider"]

# The agent service: AGENT_MODEL, RABBITMQ_* and the other settings come from the environment.
# The health server listens on every interface inside the container (HEALTH_HOST defaults to
# 127.0.0.1 outside one, where nothing else should reach it), so a probe from outside and the
# HEALTHCHECK below both find it. The delivery counts that a restart must find again live in
# AGENT_STATE_DIR: mount a volume there to keep them across container restarts.
FROM base AS runtime
ENV HEALTH_HOST=0.0.0.0 \
    HEALTH_PORT=8080 \
    AGENT_STATE_DIR=/var/lib/wa-agent
RUN mkdir -p /var/lib/wa-agent && chown app /var/lib/wa-agent
VOLUME /var/lib/wa-agent
USER app
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"
CMD ["agent-service"]
