// A grouped bar chart of throughput ratios (ours ÷ redis-server) as a hand-written SVG: one group
// per benchmark case, one bar per Blobasaur mode, a dashed target marker per group and a line at
// parity (1.0). No dependency, and the output is plain text that diffs well in git.

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * groups: [{ label: 'GET 1 KiB', sublabel: 'P1, 50 clients', target: 0.8 }]
 * series: [{ label: 'default', color: '#4e79a7', values: [ratio or NaN per group] }]
 */
export function ratioChartSvg({ title, subtitle = '', groups, series }) {
  const W = 920;
  const H = 460;
  const m = { top: 70, right: 40, bottom: 78, left: 56 };
  const plotW = W - m.left - m.right;
  const plotH = H - m.top - m.bottom;
  const all = series.flatMap((s) => s.values).filter(Number.isFinite);
  // Leave head-room for value labels; always show parity and every target. The axis stops at 2.0:
  // one case far above parity would otherwise flatten every bar that is near a target; such a bar
  // is drawn cut at the top with its value printed.
  const top = Math.max(1.2, ...groups.map((g) => g.target + 0.2), Math.min(2, Math.max(0, ...all) * 1.15));
  const yMax = Math.ceil(top * 5) / 5;
  const y = (v) => m.top + plotH - (Math.min(v, yMax) / yMax) * plotH;
  const groupW = plotW / groups.length;
  const barW = Math.min(46, (groupW * 0.7) / series.length);
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="${W / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${esc(title)}</text>`);
  if (subtitle) out.push(`<text x="${W / 2}" y="44" text-anchor="middle" fill="#555">${esc(subtitle)}</text>`);

  // Grid and y axis.
  const step = yMax > 2 ? 0.5 : 0.2;
  for (let v = 0; v <= yMax + 1e-9; v += step) {
    const yy = y(v).toFixed(1);
    out.push(`<line x1="${m.left}" y1="${yy}" x2="${W - m.right}" y2="${yy}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${m.left - 8}" y="${yy}" dy="4" text-anchor="end" fill="#444">${v.toFixed(1)}</text>`);
  }
  out.push(`<line x1="${m.left}" y1="${y(1).toFixed(1)}" x2="${W - m.right}" y2="${y(1).toFixed(1)}" stroke="#888" stroke-width="1.5"/>`);
  out.push(`<text x="${m.left + 4}" y="${(y(1) - 5).toFixed(1)}" font-size="10" fill="#666">= redis-server</text>`);
  out.push(`<text transform="translate(16 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" fill="#333">ours ÷ redis-server (median throughput)</text>`);

  groups.forEach((g, gi) => {
    const gx = m.left + gi * groupW;
    const barsW = barW * series.length;
    const x0 = gx + (groupW - barsW) / 2;
    series.forEach((s, si) => {
      const v = s.values[gi];
      const x = x0 + si * barW;
      if (!Number.isFinite(v)) {
        out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y(0) - 6).toFixed(1)}" text-anchor="middle" fill="#999">n/a</text>`);
        return;
      }
      const yy = y(v);
      const met = v >= g.target;
      const cut = v > yMax;
      out.push(`<rect x="${(x + 2).toFixed(1)}" y="${yy.toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(y(0) - yy).toFixed(1)}" fill="${s.color}"${met ? '' : ' fill-opacity="0.75"'}><title>${esc(`${g.label} ${g.sublabel} — ${s.label}: ${v.toFixed(2)} (target ≥ ${g.target})`)}</title></rect>`);
      if (cut) {
        // A white zigzag across the top of the bar says "continues beyond the axis".
        const zx = x + 2;
        const zw = barW - 4;
        out.push(`<path d="M${zx.toFixed(1)} ${(yy + 12).toFixed(1)} l${(zw / 4).toFixed(1)} -5 l${(zw / 4).toFixed(1)} 5 l${(zw / 4).toFixed(1)} -5 l${(zw / 4).toFixed(1)} 5" stroke="#fff" stroke-width="3" fill="none"/>`);
      }
      // White halo so a label stays readable where it crosses a target line.
      out.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(cut ? yy + 28 : yy - 5).toFixed(1)}" text-anchor="middle" font-size="11" fill="${cut ? '#fff' : '#222'}"${cut ? ' font-weight="bold"' : ' stroke="#fff" stroke-width="3" paint-order="stroke"'}>${v.toFixed(2)}</text>`);
    });
    // Target marker: a dashed red line across the group's bars, labelled.
    const ty = y(g.target).toFixed(1);
    out.push(`<line x1="${(x0 - 6).toFixed(1)}" y1="${ty}" x2="${(x0 + barsW + 6).toFixed(1)}" y2="${ty}" stroke="#d62728" stroke-width="2.5" stroke-dasharray="6 3"/>`);
    out.push(`<text x="${(x0 + barsW + 8).toFixed(1)}" y="${ty}" dy="4" font-size="10" fill="#d62728">≥${g.target.toFixed(1)}</text>`);
    out.push(`<text x="${(gx + groupW / 2).toFixed(1)}" y="${H - m.bottom + 20}" text-anchor="middle" font-weight="bold">${esc(g.label)}</text>`);
    out.push(`<text x="${(gx + groupW / 2).toFixed(1)}" y="${H - m.bottom + 36}" text-anchor="middle" fill="#555">${esc(g.sublabel)}</text>`);
  });
  out.push(`<line x1="${m.left}" y1="${y(0)}" x2="${W - m.right}" y2="${y(0)}" stroke="#333"/>`);

  // Legend.
  let lx = m.left;
  const ly = H - 20;
  for (const s of series) {
    out.push(`<rect x="${lx}" y="${ly - 10}" width="14" height="12" fill="${s.color}"/>`);
    out.push(`<text x="${lx + 20}" y="${ly}">${esc(s.label)}</text>`);
    lx += 30 + s.label.length * 6.5;
  }
  out.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 24}" y2="${ly - 4}" stroke="#d62728" stroke-width="2.5" stroke-dasharray="6 3"/>`);
  out.push(`<text x="${lx + 30}" y="${ly}">target (issue #9)</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
