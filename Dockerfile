# syntax=docker/dockerfile:1
# One image for every role: the command chooses (gateway = API + workers, api, worker, demo backend).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json nx.json tsconfig.base.json tsconfig.json ./
COPY libs ./libs
COPY apps ./apps
RUN npm ci --no-audit --no-fund \
 && NX_DAEMON=false NX_NO_CLOUD=true npx nx run-many -t build --outputStyle=static \
 # Keep only what runs: each workspace's package.json and dist/.
 && mkdir -p /out \
 && for d in libs/* apps/*; do mkdir -p "/out/$d" && cp "$d/package.json" "/out/$d/" && cp -r "$d/dist" "/out/$d/dist"; done

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=build /out/ ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force
COPY deploy/healthcheck.js deploy/healthcheck.js
USER node
EXPOSE 8080
# API and gateway: /mcp/health/live on PORT; a worker sets MCP_HEALTH_URL to its WORKER_METRICS_PORT /health.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["node", "deploy/healthcheck.js"]
CMD ["node", "apps/gateway/dist/main.js"]
