# The service image: the same pinned install as the Makefile (CPU-only XGBoost), a non-root user,
# a health check on readiness. compose.yaml runs it with PostgreSQL, an MLflow server and Prometheus.
# Build:  docker build -t bip-score .
# Run:    docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow.internal:5000 \
#                    -e BIP_CITIZEN_SOURCE=postgresql+psycopg://reader:...@db:5432/citizens \
#                    -v bip-var:/app/var bip-score
# Every setting is an environment variable (BIP_*, MLFLOW_TRACKING_URI; see bip/config.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PIP_NO_CACHE_DIR=1 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/bip-metrics
WORKDIR /app

COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY cli ./cli
COPY bip ./bip
COPY features ./features
COPY models ./models
COPY training ./training
COPY serving ./serving
COPY evaluation ./evaluation
COPY simulation ./simulation
COPY monitoring ./monitoring
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 bip \
    && mkdir -p /app/var /app/mlartifacts && chown bip /app/var /app/mlartifacts

USER bip
EXPOSE 8000
# The champion is loaded from MLFLOW_TRACKING_URI (models:/bip-employment@champion) at start;
# keys (BIP_KEYS_FILE) and the audit trail (BIP_AUDIT_LOG) live in /app/var: mount a volume there.
# Healthy means ready: /ready answers 200 only once a model is loaded (503 before), so a container
# without a champion is not counted as serving. urlopen raises on 503, and the check fails.
HEALTHCHECK --interval=30s --timeout=3s --start-period=120s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/ready', timeout=2)"
# The metrics folder is emptied before the workers fork: samples of a previous run must not count.
CMD ["sh", "-c", "rm -rf \"$PROMETHEUS_MULTIPROC_DIR\" && mkdir -p \"$PROMETHEUS_MULTIPROC_DIR\" && exec bip serve --host 0.0.0.0 --port 8000"]
