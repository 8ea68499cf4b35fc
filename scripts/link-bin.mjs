// npm links the bins of dependencies into node_modules/.bin, never the project's own. Link ours
// too, so that `node_modules/.bin/datavisor` exists for tools that look there (the contract
// probe's pre-stop hook does), as it does after `npm install -g` or in a dependent project.
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const link = path.join(root, 'node_modules', '.bin', 'datavisor');
fs.mkdirSync(path.dirname(link), { recursive: true });
fs.rmSync(link, { force: true });
fs.symlinkSync(path.relative(path.dirname(link), path.join(root, 'bin', 'datavisor.js')), link);
