FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY catalogue ./catalogue
COPY api ./api
COPY ingest ./ingest
COPY cubes ./cubes
COPY cubestac ./cubestac
COPY demo ./demo
COPY migrations ./migrations
RUN pip install -c requirements.lock . && useradd --system --create-home cubestac
USER cubestac
EXPOSE 8080
CMD ["cubestac", "serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
