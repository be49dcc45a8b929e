# Blobasaur in a container: built in one stage, run in a slim one as the unprivileged "node" user.
# Build: docker build -t blobasaur .
# Run:   docker run -d -p 6379:6379 -p 127.0.0.1:9121:9121 -v blobasaur-data:/data blobasaur
# The container's config is packaging/docker.toml: it listens on all interfaces, so set a password
# (mount your own config at /etc/blobasaur/config.toml with requirepass) before exposing the port.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 and zstd-napi compile from source when no prebuilt binary can be fetched.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
RUN npx tsc -p . && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# No MALLOC_* variable: the server fixes glibc's malloc thresholds itself and trims after large
# values (docs/operations.md, "Memory after a large value"); a MALLOC_* variable set here would
# replace its thresholds.
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/src/dashboard/static ./src/dashboard/static
COPY package.json LICENSE README.md ./
COPY packaging/docker.toml /etc/blobasaur/config.toml
RUN mkdir -p /data /backup && chown node:node /data /backup
USER node
VOLUME ["/data", "/backup"]
EXPOSE 6379 9121
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9121/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
STOPSIGNAL SIGTERM
# --initial-old-space-size: see the comment at the top of src/main.ts.
ENTRYPOINT ["node", "--initial-old-space-size=64", "/app/dist/src/main.js"]
CMD ["--config", "/etc/blobasaur/config.toml"]
