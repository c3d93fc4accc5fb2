// `npm run env-table`: rewrites README.md's table of environment variables from the server's table
// (packages/server/src/config-env.ts); the test in config-env-table.test.ts fails while README differs.
import fs from 'node:fs';
import { envTable, README_FILE, withEnvTable } from '../packages/server/src/config-env-table.js';

fs.writeFileSync(README_FILE, withEnvTable(fs.readFileSync(README_FILE, 'utf8'), envTable()));
console.log(`wrote the environment table in ${README_FILE.pathname}`);
