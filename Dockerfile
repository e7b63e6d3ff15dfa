# invoiceflow application image: one image for the API, the worker and the one-shot `migrate` step.
#
#   docker build -t invoiceflow .
#   docker run --rm -p 8000:8000 -e INVOICEFLOW_DATABASE_URL=... invoiceflow
#
# docker-compose.yml builds and runs it next to PostgreSQL, Temporal and Mailpit.

# --- build: turn the source tree into a wheel (no source tree in the final image) -------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --system --gid 10001 invoiceflow \
    && useradd --system --uid 10001 --gid invoiceflow --create-home --home-dir /home/invoiceflow \
       --shell /usr/sbin/nologin invoiceflow

# Dependencies first, in their own layer: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/pyproject.toml /tmp/requirements.txt

# Then the application itself (packages core, documents, services, invoiceflow, billing, persistence, workflows, activities, api
# and the module worker.py, with their templates, static files and migrations).
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-deps /tmp/wheels/*.whl && rm -rf /tmp/wheels

USER invoiceflow
WORKDIR /home/invoiceflow

EXPOSE 8000
CMD ["invoiceflow", "api", "--host", "0.0.0.0", "--port", "8000"]
