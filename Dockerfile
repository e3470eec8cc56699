# syntax=docker/dockerfile:1
# Ferry operator image: compiled JS on distroless Node 24, non-root, read-only root filesystem.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json \
 && npm ci --omit=dev --no-audit --no-fund

FROM gcr.io/distroless/nodejs24-debian13:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
# Numeric user so the pod's runAsNonRoot can be verified by the kubelet.
USER 65532:65532
EXPOSE 8080
# node directly (not npm): npm swallows SIGTERM, and the operator drains on SIGTERM.
ENTRYPOINT ["/nodejs/bin/node", "dist/cli/main.js"]
CMD ["controller"]
