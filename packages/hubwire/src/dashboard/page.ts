// The dashboard page: one self-contained HTML document (its style and script inline, no CDN), with a Content
// Security Policy that allows exactly that style and script (by hash) and connections to this origin.

import { createHash } from 'node:crypto';
import { DASHBOARD_SCRIPT } from './page-script.js';

const STYLE = `
:root { --fg: #1f2933; --muted: #616e7c; --line: #e4e7eb; --bg: #f5f7fa; --card: #fff; --ok: #15803d; --bad: #b91c1c; --warn: #b45309; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 16px; padding: 12px 20px; background: #102a43; color: #fff; }
header h1 { font-size: 17px; margin: 0; font-weight: 600; }
header .summary { color: #bcccdc; font-size: 13px; }
.pill { margin-left: auto; padding: 2px 10px; border-radius: 10px; font-size: 12px; background: #627d98; }
.pill.connected { background: var(--ok); }
.pill.disconnected { background: var(--bad); }
main { padding: 16px 20px; max-width: 1400px; margin: 0 auto; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 18px; margin: 0 0 12px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; flex: none; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
section.card h2 { font-size: 13px; font-weight: 600; margin: 0 0 6px; color: var(--muted); }
.chart svg { display: block; width: 100%; height: 180px; }
.chart text { font-size: 10px; fill: var(--muted); }
.chart .grid { stroke: var(--line); stroke-width: 1; }
.tables { display: grid; gap: 12px; margin-top: 12px; }
.charts > *, .tables > * { min-width: 0; }
table { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
td.num, th.num { text-align: right; }
td.message { white-space: normal; word-break: break-word; }
.scroll { overflow-x: auto; }
.ok { color: var(--ok); font-weight: 600; }
.bad { color: var(--bad); font-weight: 600; }
.warn { color: var(--warn); font-weight: 600; }
.empty { color: var(--muted); font-style: italic; }
code { font-size: 12px; }
`;

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The page for a dashboard whose hub is at `hubPath`, and the Content-Security-Policy to serve it with. */
export function dashboardPage(config: { hubPath: string; interval: number }): { html: string; csp: string } {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Hubwire dashboard</title>
<style>${STYLE}</style>
</head>
<body data-hub="${escapeHtml(config.hubPath)}" data-interval="${escapeHtml(String(config.interval))}" data-connected="false">
<header>
  <h1>Hubwire dashboard</h1>
  <span class="summary" id="summary"></span>
  <span class="pill" id="status">connecting</span>
</header>
<main>
  <div class="legend" id="legend"></div>
  <div class="charts">
    <section class="card chart"><h2>Backplane lag: rows behind the stream head</h2><svg id="chart-lag" data-chart="lag"></svg></section>
    <section class="card chart"><h2>Messages sent to clients per second</h2><svg id="chart-sent" data-chart="sent"></svg></section>
    <section class="card chart"><h2>Backplane messages received per second</h2><svg id="chart-received" data-chart="received"></svg></section>
    <section class="card chart"><h2>Connections</h2><svg id="chart-connections" data-chart="connections"></svg></section>
  </div>
  <div class="tables">
    <section class="card"><h2>Nodes</h2><div class="scroll"><table id="nodes"></table></div></section>
    <section class="card"><h2>Streams: heads, positions and lag as each node sees them</h2><div class="scroll"><table id="streams"></table></div></section>
    <section class="card"><h2>Backplane counters</h2><div class="scroll"><table id="counters"></table></div></section>
    <section class="card"><h2>Recent errors</h2><div class="scroll"><table id="errors"></table></div></section>
  </div>
</main>
<script>${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(DASHBOARD_SCRIPT)}`,
    `style-src ${sha256(STYLE)}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return { html, csp };
}
