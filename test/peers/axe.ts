import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Page } from 'playwright-core';

/** axe-core's engine (the maintained accessibility rules of Deque), to put into the page under test. */
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }

/** axe-core's violations on the page as it stands (WCAG 2.x A and AA, plus best practice), one line per element. */
export async function axeViolations(page: Page): Promise<string[]> {
  // the dashboard's Content-Security-Policy (script-src 'self') rightly refuses an inline script tag: the
  // engine goes in through the browser's debugging protocol instead, which the page's policy does not govern
  if (!(await page.evaluate('typeof window.axe !== "undefined"'))) await page.evaluate(`${AXE_SOURCE}\n;void 0`);
  const violations = (await page.evaluate(`axe.run(document, { resultTypes: ['violations'], runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } }).then((r) => r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => ({ target: n.target })) })))`)) as AxeViolation[];
  return violations.flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}) at ${JSON.stringify(n.target)}: ${v.help}`));
}
