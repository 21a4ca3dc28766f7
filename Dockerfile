# The operator image: `docker build -t tmk-operator .` (the context is the repository: it shares tmk_common).
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml ./
COPY common common
COPY operator operator
COPY emulator emulator
COPY images/api images/api
COPY images/site images/site
# One pyproject holds every package; the image carries them all and runs only the operator.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11.14-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /opt/venv /opt/venv
# Writes nothing but /tmp (an emptyDir in the chart): the root filesystem can be read-only.
USER 1000:1000
EXPOSE 8081
ENTRYPOINT ["python", "-m", "tmk_operator"]
