#!/usr/bin/env node
// A server runs in production mode unless told otherwise: graphql-js then skips a per-check
// realm test that costs about 5% of a GraphQL request (and hides "Did you mean" suggestions).
// Set NODE_ENV=development to get them back.
process.env.NODE_ENV ??= 'production';
await import('../dist/cli/main.js');
