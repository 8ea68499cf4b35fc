import { createRequire } from 'node:module';
import { css, editorWorkerService, favicon, graphqlWorker, js, jsonWorker } from '@graphql-yoga/render-graphiql/graphiql';
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * GraphiQL as a small page and the files it loads. @graphql-yoga/render-graphiql inlines its whole
 * bundle (script, CSS, Monaco's three workers, the icon) into the page: 9 MB on every visit, which
 * no cache can keep since the page names the newest dataset. Here the page links them, at URLs that
 * carry the package's version, so a browser keeps them for good and the server compresses each once
 * (src/rest/static-assets.ts). The bundle is still served by this server alone (no CDN).
 */

export const GRAPHIQL_ASSETS_PREFIX = '/graphql/assets/';

const { version } = createRequire(import.meta.url)('@graphql-yoga/render-graphiql/package.json') as { version: string };
const base = `${GRAPHIQL_ASSETS_PREFIX}${version}/`;

const FILES = {
  script: { path: `${base}graphiql.js`, type: 'text/javascript; charset=utf-8', text: js },
  style: { path: `${base}graphiql.css`, type: 'text/css; charset=utf-8', text: css },
  editorWorker: { path: `${base}editor.worker.js`, type: 'text/javascript; charset=utf-8', text: editorWorkerService },
  jsonWorker: { path: `${base}json.worker.js`, type: 'text/javascript; charset=utf-8', text: jsonWorker },
  graphqlWorker: { path: `${base}graphql.worker.js`, type: 'text/javascript; charset=utf-8', text: graphqlWorker },
};
const ICON = { path: `${base}favicon.ico`, type: 'image/x-icon' };

/** The files the page links; each turns its string into bytes when first asked for. */
export const GRAPHIQL_ASSETS: readonly { path: string; type: string; load(): Uint8Array<ArrayBuffer> }[] = [
  ...Object.values(FILES).map((f) => ({ path: f.path, type: f.type, load: () => new TextEncoder().encode(f.text) })),
  // The package's icon is a data: URL.
  { ...ICON, load: () => new Uint8Array(Buffer.from(favicon.slice(favicon.indexOf(',') + 1), 'base64')) },
];

/** JSON placed in a <script>: `<` escaped, so no value can close the element. */
const scriptJson = (value: unknown) => JSON.stringify(value).replace(/</g, '\\u003c');
const escapeHtml = (text: string) => text.replace(/[&<>"]/g, (ch) => `&#${ch.charCodeAt(0)};`);

/** The page render-graphiql makes, with links instead of the inlined bundle. */
export function renderGraphiQLPage(opts: GraphiQLOptions = {}): string {
  const workers = { editorWorkerService: FILES.editorWorker.path, json: FILES.jsonWorker.path, graphql: FILES.graphqlWorker.path };
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <title>${escapeHtml(opts.title || 'Yoga GraphiQL')}</title>
    <link rel="icon" href="${ICON.path}" />
    <link rel="stylesheet" href="${FILES.style.path}" />
  </head>
  <body id="body" class="no-focus-outline">
    <noscript>You need to enable JavaScript to run this app.</noscript>
    <div id="root"></div>
    <script>
      const workers = ${scriptJson(workers)};
      self['MonacoEnvironment'] = { globalAPI: false, getWorkerUrl: (moduleId, label) => workers[label] };
    </script>
    <script src="${FILES.script.path}"></script>
    <script>
      YogaGraphiQL.renderYogaGraphiQL(window.document.querySelector('#root'), ${scriptJson(opts)});
    </script>
  </body>
</html>
`;
}
