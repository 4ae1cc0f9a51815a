// The paths memproxy answers itself; every other request is forwarded to the backend.

/** memproxy's own endpoints (answered for GET and HEAD). */
export const ENDPOINTS = {
  health: "/health",
  liveness: "/health/liveliness",
  livenessAlias: "/health/liveness",
  readiness: "/health/readiness",
  routingInfo: "/memory-routing/info",
  metrics: "/metrics",
  stats: "/memory-routing/stats",
} as const;

/** The name of one of memproxy's own endpoints. */
export type EndpointName = keyof typeof ENDPOINTS;
