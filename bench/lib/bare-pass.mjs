// Baseline: the bare token-level stream-json pass over a file (16 KiB reads, tokenizer driven
// synchronously, tokens counted and dropped). What parsing costs before DataVisor does anything.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { jsonParser } from 'stream-json/parser.js';

const file = process.argv[2];
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const tokenize = jsonParser({ packValues: true, streamValues: false });
const decoder = new StringDecoder('utf8');
const MANY = Symbol.for('object-stream.many');
let tokens = 0;
const count = (out) => {
  if (out && out[MANY] === 1) tokens += out.values.length;
  else if (typeof out === 'object') tokens++;
};
for await (const chunk of fs.createReadStream(file, { highWaterMark: 16 * 1024 })) count(tokenize(decoder.write(chunk)));
count(tokenize(decoder.end()));
count(tokenize(Symbol.for('object-stream.none')));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(JSON.stringify({ seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, tokens, rssMB: process.resourceUsage().maxRSS / 1024 }) + '\n');
