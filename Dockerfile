# syntax=docker/dockerfile:1
# Ferry operator image: compiled JS on distroless Node 24, non-root, read-only root filesystem.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t ferry:0.1.0 .
#
# Three stages: `build` compiles TypeScript with the dev dependencies, `deps` installs the
# production dependencies alone from the lockfile, and the final stage takes only package.json,
# those node_modules and dist/ — no sources, tests, dev tools or npm. .dockerignore is an
# allow-list, so nothing else can reach the build context. test/integration/image-content.test.ts
# assembles what the final stage copies and runs the operator from it.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:24-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
# Lifecycle scripts off: no production dependency needs one, and none should run at build time.
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM gcr.io/distroless/nodejs24-debian13:nonroot
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/ferry-dev/ferry
ARG CREATED=
LABEL org.opencontainers.image.title="ferry" \
      org.opencontainers.image.description="Kubernetes operator for API integrations that never fail silently" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0"
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /src/package.json ./package.json
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Numeric user (distroless' nonroot, the chart's runAsUser) so the kubelet can verify runAsNonRoot.
USER 65532:65532
EXPOSE 8080
# node directly (not npm): npm swallows SIGTERM, and the operator drains on SIGTERM.
ENTRYPOINT ["/nodejs/bin/node", "dist/cli/main.js"]
CMD ["controller"]
