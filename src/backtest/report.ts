import type { BacktestResult, StrategyName, StrategyResult } from './engine.js';

const LABEL: Record<StrategyName, string> = {
  none: 'no battery, no shifting',
  self_consumption: 'self-consumption rule',
  price_threshold: 'price thresholds (charge in the day’s cheapest 15 %, discharge at or above its median)',
  homeflex: 'homeflex, rolling 48 h plans',
  optimum: 'perfect-foresight optimum over the whole period',
};

const r2 = (x: number) => Math.round(x * 100) / 100;
const r4 = (x: number) => Math.round(x * 1e4) / 1e4;

/** Savings against "none", and the share of the optimum's savings each strategy captured. */
function savings(result: BacktestResult) {
  const none = result.strategies.find((s) => s.name === 'none');
  const opt = result.strategies.find((s) => s.name === 'optimum');
  return (s: StrategyResult) => {
    const saved = none ? none.cost - s.cost : undefined;
    const optSaved = none && opt ? none.cost - opt.cost : undefined;
    return { savings: saved, share: saved !== undefined && optSaved ? saved / optSaved : undefined };
  };
}

export function summaryJson(result: BacktestResult, meta: Record<string, unknown>) {
  const sv = savings(result);
  const byMonth = (name: StrategyName) => result.strategies.find((s) => s.name === name)?.months;
  return {
    ...meta,
    settlement_minutes: result.stepMinutes,
    end_energy_value_per_kwh: r4(result.endValuePerKwh),
    strategies: Object.fromEntries(
      result.strategies.map((s) => {
        const { savings: saved, share } = sv(s);
        return [
          s.name,
          {
            description: LABEL[s.name],
            import_kwh: r2(s.importKwh),
            export_kwh: r2(s.exportKwh),
            cost: r2(s.cost),
            end_energy_value: r2(s.endEnergyValue),
            savings: saved === undefined ? null : r2(saved),
            share_of_optimum_savings: share === undefined ? null : r4(share),
            ev_shortfall_kwh: r2(s.evShortfallKwh),
            discomfort_kh: r2(s.discomfortKh),
            ...(s.plans !== undefined ? { plans: s.plans, solve_s: r2((s.solveMs ?? 0) / 1000) } : {}),
            months: s.months.map((m) => {
              const base = byMonth('none')?.find((x) => x.month === m.month);
              const opt = byMonth('optimum')?.find((x) => x.month === m.month);
              const saved = base ? base.cost - m.cost : undefined;
              const optSaved = base && opt ? base.cost - opt.cost : undefined;
              return {
                month: m.month,
                import_kwh: r2(m.importKwh),
                export_kwh: r2(m.exportKwh),
                cost: r2(m.cost),
                savings: saved === undefined ? null : r2(saved),
                share_of_optimum_savings: saved !== undefined && optSaved ? r4(saved / optSaved) : null,
              };
            }),
          },
        ];
      }),
    ),
  };
}

/** One row per settlement interval: prices, load, PV, and per strategy the net grid energy and battery energy. */
export function slotsCsv(result: BacktestResult): string {
  const names = result.strategies.map((s) => s.name);
  const head = ['start', 'end', 'import_rate', 'export_rate', 'load_kwh', 'pv_kwh', ...names.flatMap((n) => [`${n}_grid_kwh`, `${n}_soc_kwh`])];
  const lines = [head.join(',')];
  result.settlement.forEach((s, i) => {
    lines.push(
      [
        new Date(s.start).toISOString(),
        new Date(s.end).toISOString(),
        r4(s.importRate),
        r4(s.exportRate),
        r4(s.loadKwh),
        r4(s.pvKwh),
        ...result.strategies.flatMap((st) => [r4(st.netKwh[i]), r4(st.socKwh[i])]),
      ].join(','),
    );
  });
  return lines.join('\n') + '\n';
}

const COLORS: Record<StrategyName, string> = { none: '#888', self_consumption: '#e69f00', price_threshold: '#cc79a7', homeflex: '#0072b2', optimum: '#009e73' };
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A self-contained HTML page (inline SVG, no scripts): cumulative savings per strategy, and savings per month. */
export function chartHtml(result: BacktestResult, title: string, currency: string): string {
  const W = 900;
  const H = 320;
  const pad = { l: 60, r: 20, t: 20, b: 30 };
  const none = result.strategies.find((s) => s.name === 'none');
  const settle = result.settlement;
  const cumulative = (s: StrategyResult) => {
    // savings against "none", accumulated interval by interval
    let acc = 0;
    const pts: [number, number][] = [];
    const every = Math.max(1, Math.floor(settle.length / 600));
    settle.forEach((iv, i) => {
      const cost = (n: number) => (n > 0 ? n * iv.importRate : n * iv.exportRate);
      acc += (none ? cost(none.netKwh[i]) : 0) - cost(s.netKwh[i]);
      if (i % every === 0 || i === settle.length - 1) pts.push([iv.end, acc]);
    });
    return pts;
  };
  const series = result.strategies.filter((s) => s.name !== 'none').map((s) => ({ s, pts: cumulative(s) }));
  const t0 = settle[0]?.start ?? 0;
  const t1 = settle[settle.length - 1]?.end ?? 1;
  const ys = series.flatMap((x) => x.pts.map((p) => p[1]));
  const yMin = Math.min(0, ...ys);
  const yMax = Math.max(1e-9, ...ys);
  const X = (t: number) => pad.l + ((t - t0) / (t1 - t0 || 1)) * (W - pad.l - pad.r);
  const Y = (v: number) => pad.t + (1 - (v - yMin) / (yMax - yMin)) * (H - pad.t - pad.b);
  const lines = series.map(({ s, pts }) => `<polyline fill="none" stroke="${COLORS[s.name]}" stroke-width="2" points="${pts.map(([t, v]) => `${X(t).toFixed(1)},${Y(v).toFixed(1)}`).join(' ')}"><title>${esc(LABEL[s.name])}</title></polyline>`);
  const ticks = [yMin, (yMin + yMax) / 2, yMax].map((v) => `<text x="${pad.l - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="11">${v.toFixed(0)}</text><line x1="${pad.l}" x2="${W - pad.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/>`);
  // monthly savings bars
  const months = none?.months.map((m) => m.month) ?? [];
  const bars = result.strategies.filter((s) => s.name !== 'none');
  const monthSaved = (s: StrategyResult, m: string) => (none?.months.find((x) => x.month === m)?.cost ?? 0) - (s.months.find((x) => x.month === m)?.cost ?? 0);
  const bMax = Math.max(1e-9, ...months.flatMap((m) => bars.map((s) => Math.abs(monthSaved(s, m)))));
  const groupW = (W - pad.l - pad.r) / Math.max(1, months.length);
  const barW = (groupW * 0.8) / Math.max(1, bars.length);
  const BH = 240;
  const by = (v: number) => pad.t + (1 - v / bMax) * (BH - pad.t - pad.b) * 0.5;
  const rects = months.flatMap((m, i) =>
    bars.map((s, k) => {
      const v = monthSaved(s, m);
      const x = pad.l + i * groupW + groupW * 0.1 + k * barW;
      const zero = pad.t + (BH - pad.t - pad.b) / 2;
      const y = v >= 0 ? by(v) : zero;
      const h = Math.abs(by(v) - zero);
      return `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${(barW * 0.9).toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[s.name]}"><title>${m} ${esc(LABEL[s.name])}: ${v.toFixed(2)} ${currency}</title></rect>`;
    }),
  );
  const monthLabels = months.map((m, i) => `<text x="${(pad.l + i * groupW + groupW / 2).toFixed(1)}" y="${BH - 8}" text-anchor="middle" font-size="11">${m.slice(2)}</text>`);
  const legend = result.strategies.map((s) => `<li><span style="background:${COLORS[s.name]}"></span>${esc(LABEL[s.name])}: ${s.cost.toFixed(2)} ${currency}</li>`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}ul{list-style:none;padding:0}li span{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:middle}svg{border:1px solid #ddd;background:#fff}</style>
</head><body>
<h1>${esc(title)}</h1>
<ul>${legend.join('')}</ul>
<h2>Savings against no battery and no shifting, accumulated (${esc(currency)})</h2>
<svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">${ticks.join('')}${lines.join('')}
<text x="${pad.l}" y="${H - 8}" font-size="11">${new Date(t0).toISOString().slice(0, 10)}</text><text x="${W - pad.r}" y="${H - 8}" font-size="11" text-anchor="end">${new Date(t1).toISOString().slice(0, 10)}</text></svg>
<h2>Savings per month (${esc(currency)})</h2>
<svg viewBox="0 0 ${W} ${BH}" width="${W}" height="${BH}"><line x1="${pad.l}" x2="${W - pad.r}" y1="${pad.t + (BH - pad.t - pad.b) / 2}" y2="${pad.t + (BH - pad.t - pad.b) / 2}" stroke="#999"/>${rects.join('')}${monthLabels.join('')}</svg>
</body></html>
`;
}
