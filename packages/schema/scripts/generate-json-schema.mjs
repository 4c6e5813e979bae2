// Writes packages/schema/json-schema/*.json from the zod schemas (run: npm run generate -w packages/schema).
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemaFiles } from '../dist/json-schema.js';

const outDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'json-schema');
mkdirSync(outDir, { recursive: true });
for (const [name, text] of Object.entries(jsonSchemaFiles())) {
  writeFileSync(join(outDir, name), text);
  console.log(`wrote json-schema/${name}`);
}
