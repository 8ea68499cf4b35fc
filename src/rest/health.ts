import { createRoute, z } from '@hono/zod-openapi';
import { newRouter } from './router.js';

const HealthSchema = z.object({ status: z.literal('ok') }).openapi('Health');

const health = createRoute({
  method: 'get',
  path: '/health',
  summary: 'Liveness: answers while the process serves requests (also during an ingest)',
  // Open even with DATAVISOR_API_TOKEN set: probes and load balancers hold no token.
  security: [],
  responses: { 200: { description: 'The server is up', content: { 'application/json': { schema: HealthSchema } } } },
});

export function healthRoutes() {
  return newRouter().openapi(health, (c) => c.json({ status: 'ok' as const }, 200));
}
