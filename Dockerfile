# The learning engine: one image, one process per container (`consume persist`, ...).
# Unverified here: the development machines cannot run Docker (see README, "Production").
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends make \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml Makefile README.md ./
COPY amc_learning amc_learning
COPY schemas schemas
COPY streams streams
COPY consumers consumers
COPY simulator simulator
COPY intelligence intelligence
COPY sql sql

# The same install step as every development machine and CI (tests/unit/test_deploy.py).
RUN make install

ENV LEARNING_METRICS_HOST=0.0.0.0 \
    LEARNING_METRICS_PORT=9400 \
    LEARNING_DATA_DIR=/var/lib/learning
EXPOSE 9400
ENTRYPOINT ["/app/.venv/bin/amc-learning"]
CMD ["--help"]
