FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY loader ./loader
COPY queries ./queries
COPY api ./api
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["ttpgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
