# The learning engine: one image, one process per container (`consume persist`, ...).
# Unverified here: the development machines cannot run Docker (see README, "Production").
# The image holds the wheel that tests/integration/test_wheel.py installs and exercises:
# built in a first stage, installed with its runtime dependencies only (no dev tools).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY amc_learning amc_learning
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim-bookworm
COPY --from=build /dist /dist
RUN pip install --no-cache-dir /dist/*.whl && rm -rf /dist

ENV LEARNING_METRICS_HOST=0.0.0.0 \
    LEARNING_METRICS_PORT=9400 \
    LEARNING_DATA_DIR=/var/lib/learning
WORKDIR /var/lib/learning
EXPOSE 9400
ENTRYPOINT ["amc-learning"]
CMD ["--help"]
