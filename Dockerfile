# mlaas in a container: one image for the API servers and the workers (docs/deploy.md).
#   docker build -t mlaas .
#   docker run -p 8080:8080 -v mlaas-data:/var/lib/mlaas mlaas
# Stage 1 installs what the README's commands install (scripts/install-deps.sh) on Debian 12
# and builds the release binary and the web app. Stage 2 is Debian 12 slim with only the
# packages holding the libraries the binary links (scripts/runtime-packages.sh), the binary and
# the web app, run as an unprivileged user.
ARG DEBIAN_IMAGE=debian:12

FROM ${DEBIAN_IMAGE} AS build
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
COPY scripts/install-deps.sh scripts/install-deps.sh
RUN ./scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . .
# Again, now with the sources: the npm packages of the web app (the apt part is done).
RUN ./scripts/install-deps.sh \
 && rm -rf build \
 && ./scripts/build.sh release \
 && install -D -m 0755 build/release/src/cli/mlaas /opt/mlaas/bin/mlaas \
 && cp -r build/release/web /opt/mlaas/web \
 && ./scripts/runtime-packages.sh /opt/mlaas/bin/mlaas > /opt/mlaas/runtime-packages.txt

FROM ${DEBIAN_IMAGE}-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /opt/mlaas /opt/mlaas
RUN apt-get update \
 && xargs -a /opt/mlaas/runtime-packages.txt apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/mlaas --create-home mlaas \
 && /opt/mlaas/bin/mlaas --version
USER 10001:10001
ENV PATH=/opt/mlaas/bin:$PATH \
    MLAAS_DATA_DIR=/var/lib/mlaas \
    MLAAS_WEB_DIR=/opt/mlaas/web
WORKDIR /var/lib/mlaas
VOLUME /var/lib/mlaas
EXPOSE 8080
ENTRYPOINT ["mlaas"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
