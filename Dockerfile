# The service image: the same pinned install as the Makefile, a non-root user, a health check.
# Build:  docker build -t bip-score .
# Run:    docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow.internal:5000 \
#                    -v bip-var:/app/var bip-score
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY bip ./bip
COPY features ./features
COPY models ./models
COPY training ./training
COPY serving ./serving
COPY evaluation ./evaluation
COPY simulation ./simulation
RUN pip install --no-deps . \
    && useradd --create-home --uid 10001 bip \
    && mkdir -p /app/var && chown bip /app/var

USER bip
EXPOSE 8000
# The champion is loaded from MLFLOW_TRACKING_URI (models:/bip-employment@champion) at start;
# keys (BIP_KEYS_FILE) and the audit trail (BIP_AUDIT_LOG) live in /app/var: mount a volume there.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2).status != 200)"
CMD ["bip", "serve", "--host", "0.0.0.0", "--port", "8000"]
