// PM2 entry point: `npm start` (pm2-runtime, foreground) or `npx pm2 start ecosystem.config.js`.
// Thin on purpose: the validated config (conf/switchyard.yaml or $SWITCHYARD_CONFIG) decides the apps.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const generated = execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bin', 'ecosystem-json.ts')], {
  cwd: root,
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
});

export const apps = JSON.parse(generated).apps;
