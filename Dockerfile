# The operator and session API images, from one build (the context is the repository: both use tmk_common).
#   docker build -t tmk-operator .              the operator (the last stage, the default)
#   docker build --target api -t tmk-api .      the session API
FROM python:3.11.14-slim-bookworm AS source
WORKDIR /src
COPY pyproject.toml ./
COPY common common
COPY operator operator
COPY images/api images/api
COPY images/site images/site
# cluster/ (the development control plane) stays out: an empty folder gives the package finder nothing there.
RUN mkdir -p cluster

# Each image installs the dependencies its own process imports (the pyproject's extra of that name), no more.
FROM source AS build-api
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check '.[api]'

FROM source AS build-operator
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check '.[operator]'

FROM python:3.11.14-slim-bookworm AS runtime
# A passwd entry for uid 1000: kopf names itself after the user when no POD_ID is set, and fails without one.
RUN useradd --uid 1000 --user-group --no-create-home --shell /usr/sbin/nologin tmk
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# Both write nothing but /tmp (an emptyDir): the root filesystem can be read-only.
USER 1000:1000

FROM runtime AS api
COPY --from=build-api /opt/venv /opt/venv
EXPOSE 8080
ENTRYPOINT ["python", "-m", "tmk_api"]

FROM runtime AS operator
COPY --from=build-operator /opt/venv /opt/venv
EXPOSE 8081
ENTRYPOINT ["python", "-m", "tmk_operator"]
