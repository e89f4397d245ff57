FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    TUKI_HOST=0.0.0.0 TUKI_PORT=8000
WORKDIR /srv/tuki

COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY modules ./modules
COPY templates ./templates
COPY static ./static
# Editable install: the code finds templates/, static/, modules/ and migrations/ beside it.
RUN pip install --upgrade pip && pip install -e .

RUN useradd --system --uid 10001 --home /srv/tuki tuki
USER tuki
EXPOSE 8000

# Migrations first, then the server; both read TUKI_* from the environment.
CMD ["sh", "-c", "tuki migrate && exec tuki serve"]
