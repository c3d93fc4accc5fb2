// `npm run openapi`: rewrites docs/openapi.json from the route table (the test in
// packages/server/src/api/contract.test.ts fails while the committed copy differs).
import fs from 'node:fs';
import { CONTRACT_FILE, contractDocument } from '../packages/server/src/api/contract.js';

fs.writeFileSync(CONTRACT_FILE, JSON.stringify(contractDocument(), null, 2) + '\n');
console.log(`wrote ${CONTRACT_FILE.pathname}`);
