// Copies src/migrations/*.sql to dist/migrations (run by `npm run build` after tsc).
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const from = join(root, 'src', 'migrations');
const to = join(root, 'dist', 'migrations');

rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
const files = readdirSync(from).filter((f) => f.endsWith('.sql'));
for (const file of files) cpSync(join(from, file), join(to, file));
console.log(`copy-migrations: ${files.length} file(s) → dist/migrations`);
