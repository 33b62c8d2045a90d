# The agent service image (the default, last stage) and the test image (target "test").
#   docker build -t wa-agent-service .
#   docker compose -f docker-compose.test.yml up --build --exit-code-from tests tests
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Only what the package needs: no .venv, caches or node_modules from the build context.
COPY pyproject.toml README.md ./
COPY agent_service agent_service
COPY harness harness
COPY fakes fakes
RUN pip install . \
    && useradd --create-home --uid 10001 app

# pytest -m e2e against the compose file's RabbitMQ (HARNESS_BROKER=external).
FROM base AS test
RUN pip install ".[test]"
COPY tests tests
COPY contracts contracts
COPY loadtests loadtests
USER app
CMD ["pytest", "-m", "e2e", "-p", "no:cacheprovider"]

# The agent service: AGENT_MODEL, RABBITMQ_* and the other settings come from the environment.
FROM base AS runtime
USER app
EXPOSE 8080
CMD ["agent-service"]
