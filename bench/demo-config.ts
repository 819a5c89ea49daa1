import { readFileSync } from 'node:fs';
import { demoConfig } from '../src/cli.js';
import { freePort } from './hub-process.js';

/**
 * The demo site with every fixed port (HTTP, OCPP, the simulated Modbus inverter) moved to one
 * free at run time and storage in `storageDir`, so tests and benchmarks never clash with a demo
 * that is already running.
 */
export async function demoYamlOnFreePorts(storageDir: string): Promise<string> {
  let text = readFileSync(demoConfig, 'utf8').replace(/dir: \.\.\/data\/demo/, `dir: ${JSON.stringify(storageDir)}`);
  for (const fixed of new Set([...text.matchAll(/port: (\d{2,5})\b/g)].map((m) => m[1]))) {
    const port = await freePort();
    text = text.replaceAll(`port: ${fixed}`, `port: ${fixed === '8080' ? 0 : port}`);
  }
  return text;
}
