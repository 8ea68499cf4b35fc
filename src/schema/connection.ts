import { builder } from './builder.js';

/** Every connection counts its rows, lazily: `totalCount` costs a query only when it is selected. */
builder.globalConnectionField('totalCount', (t) =>
  t.int({
    description: 'How many nodes the connection holds in all (with its filter), counted only when asked for.',
    resolve: (connection) => connection.totalCount(),
  }),
);
