import { builder } from './builder.js';
import './connection.js';
import './dataset.js';
import './ingest.js';
import './predictions.js';
import './evaluation.js';
import './export.js';
import './sample.js';
import './objects.js';
import './aggregate.js';
import './curation.js';

builder.queryType({ description: 'Datasets and their samples; every object with a global id is also reachable through `node`.' });
builder.mutationType({});
builder.subscriptionType({});

export const schema = builder.toSchema();
