import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Collects the tests skipped for absent system peers (test/peers/system.ts) from every worker and
 * prints one summary at the end of the run, so a machine without Debian's peers shows what it did
 * not test and how to install it.
 */
export default function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'homeflex-peer-skips-'));
  const log = join(dir, 'skips.jsonl');
  process.env.HOMEFLEX_PEER_SKIP_LOG = log;
  return () => {
    const lines = existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
    rmSync(dir, { recursive: true, force: true });
    if (!lines.length) return;
    const skips = lines.map((l) => JSON.parse(l) as { file: string; title: string; peers: string[]; install: string });
    const byPeer = new Map<string, { install: string; where: Set<string> }>();
    for (const s of skips) {
      const key = s.peers.join(' + ');
      const entry = byPeer.get(key) ?? { install: s.install, where: new Set<string>() };
      entry.where.add(`${s.file} › ${s.title}`);
      byPeer.set(key, entry);
    }
    const out = [`\nSkipped ${skips.length} test group(s) because system peers are missing (CI installs them; HOMEFLEX_REQUIRE_PEERS=1 makes this a failure):`];
    for (const [peer, { install, where }] of byPeer) {
      out.push(`  ${peer} — install: ${install}`);
      for (const w of where) out.push(`    ${w}`);
    }
    process.stdout.write(`${out.join('\n')}\n`);
  };
}
