import { METHOD_NAME_ALL, type Result, type Router } from 'hono/router';
import { RegExpRouter } from 'hono/router/reg-exp-router';
import { SmartRouter } from 'hono/router/smart-router';
import { TrieRouter } from 'hono/router/trie-router';

/**
 * Hono's default router, built once per method. Hono's RegExpRouter (one regular expression for all
 * routes, ~0.1 µs a match) cannot hold a static segment beside a parameter at the same place for
 * the same method, such as `POST /datasets/ingest` beside `POST /datasets/:id/predictions`;
 * the default SmartRouter then falls back to TrieRouter for every method, which costs 1.5-3 µs a
 * match on our routes: 4-8% of a cached thumbnail's whole request (docs/performance-http.md).
 * Split by method, only the methods with such a pair fall back, and GET (thumbnails, pages) keeps
 * the fast matcher. tests/rest/router.test.ts checks that GET does.
 */
export class MethodRouter<T> implements Router<T> {
  readonly name = 'MethodRouter';
  private readonly routes: [method: string, path: string, handler: T][] = [];
  private readonly byMethod = new Map<string, SmartRouter<T>>();

  add(method: string, path: string, handler: T): void {
    if (this.byMethod.size > 0) throw new Error('MethodRouter: a route was added after the first request');
    this.routes.push([method, path, handler]);
  }

  match(method: string, path: string): Result<T> {
    return this.routerOf(method).match(method, path);
  }

  /** Which of Hono's routers serves a method (after its first match). */
  activeRouterName(method: string): string {
    const router = this.routerOf(method);
    router.match(method, '/');
    return router.activeRouter.name;
  }

  private routerOf(method: string): SmartRouter<T> {
    let router = this.byMethod.get(method);
    if (!router) {
      router = new SmartRouter<T>({ routers: [new RegExpRouter<T>(), new TrieRouter<T>()] });
      // Registration order is the order handlers run in; `ALL` routes (middleware, GraphQL) join every method.
      for (const [m, p, h] of this.routes) if (m === method || m === METHOD_NAME_ALL) router.add(m, p, h);
      this.byMethod.set(method, router);
    }
    return router;
  }
}
