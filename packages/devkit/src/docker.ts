import { spawnSync } from 'node:child_process';

let cached: boolean | undefined;

/** True when a Docker engine answers (not just the client being installed). */
export function dockerAvailable(): boolean {
  if (cached === undefined) {
    const probe = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 5_000, encoding: 'utf8' });
    cached = probe.status === 0 && probe.stdout.trim() !== '';
  }
  return cached;
}
