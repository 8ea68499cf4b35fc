/**
 * DuckDB allocates its buffers through a jemalloc of its own, set up to keep freed pages for a
 * second before handing them back to the OS. An ingest frees and allocates hundreds of MB within
 * that second (staging row groups, then the final join and sort), so the process's RSS peaked at
 * live plus freed memory: ~410 MB on the train2017-scale file against ~335 MB when freed pages go
 * back at once (docs/storage.md, "Memory"). jemalloc reads this variable when DuckDB first
 * allocates, so this module is evaluated before @duckdb/node-api is imported (connection.ts
 * imports it first). A value the user set wins.
 */
process.env.DUCKDB_JE_MALLOC_CONF ??= 'dirty_decay_ms:0,muzzy_decay_ms:0';
