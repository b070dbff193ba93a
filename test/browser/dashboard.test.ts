// The live dashboard in a real browser: two Hubwire nodes in separate processes share a PostgreSQL backplane, clients
// on both send traffic, and the dashboard page served by node A (Debian's Chromium, headless) shows both nodes: its
// charts get a series per node with data points, and a screenshot of the charts holds each node's colour; when
// node B is killed, the page shows it dead.
//
// The screenshots are written to a temporary directory (its path is logged); DASHBOARD_SCREENSHOT=/path/file.png
// keeps the full-page one there instead.

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type * as signalR from '@microsoft/signalr';
import pg from 'pg';
import { type Browser, chromium, type Page } from 'playwright-core';
import { startClient } from '../helpers/clients.js';
import { type NodeProcess, startNodeProcess } from '../helpers/node-process.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const STEP_MS = 20_000;
/** Points each node's series must have in the charts before the screenshot. */
const MIN_POINTS = 12;
const CHARTS = ['lag', 'sent', 'received', 'connections'];

let browser: Browser | undefined;
const schema = `hw_dash_${process.pid}_${Date.now().toString(36)}`;
let nodes: NodeProcess[] = [];
const clients: signalR.HubConnection[] = [];
let traffic: NodeJS.Timeout | undefined;

before(async () => {
  assert.ok(existsSync('/usr/bin/chromium'), "the browser tests need Debian's chromium (apt-get install -y chromium)");
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic'],
  });
  const args = ['--backplane', DATABASE_URL, '--schema', schema, '--heartbeat-ms', '300', '--dashboard-ms', '250'];
  nodes = await Promise.all([startNodeProcess(args), startNodeProcess(args)]);
});

after(async () => {
  clearInterval(traffic);
  await Promise.all(clients.map((client) => client.stop().catch(() => {})));
  await browser?.close();
  await Promise.all(nodes.map((node) => node.stop()));
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

/** What the page's charts hold: per chart, per node id, the number of points of its series. */
function chartSeries(page: Page): Promise<Record<string, Record<string, number>>> {
  return page.evaluate(() => {
    const out: Record<string, Record<string, number>> = {};
    for (const chart of Array.from(document.querySelectorAll<SVGElement>('svg[data-chart]'))) {
      const series: Record<string, number> = {};
      for (const line of Array.from(chart.querySelectorAll<SVGPolylineElement>('polyline'))) {
        series[line.dataset.node ?? ''] = Number(line.dataset.points);
      }
      out[chart.dataset.chart ?? ''] = series;
    }
    return out;
  });
}

/**
 * Decodes a PNG in the browser (an <img> drawn on a canvas) and counts, per colour, the pixels within a small
 * distance of it: the screenshot itself is checked, not the page's DOM. `page` is a blank page (the dashboard's
 * Content-Security-Policy allows no images).
 */
async function countColours(page: Page, png: Buffer, colours: string[]): Promise<Record<string, number>> {
  return page.evaluate(
    async ({ data, colours }) => {
      const image = new Image();
      image.src = `data:image/png;base64,${data}`;
      await image.decode();
      const canvas = document.createElement('canvas');
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      const context = canvas.getContext('2d') as CanvasRenderingContext2D;
      context.drawImage(image, 0, 0);
      const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
      const counts: Record<string, number> = {};
      for (const colour of colours) {
        const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(colour.slice(i, i + 2), 16)) as [number, number, number];
        let count = 0;
        for (let i = 0; i < pixels.length; i += 4) {
          const d =
            Math.abs((pixels[i] as number) - r) +
            Math.abs((pixels[i + 1] as number) - g) +
            Math.abs((pixels[i + 2] as number) - b);
          if (d <= 24) count++;
        }
        counts[colour] = count;
      }
      return counts;
    },
    { data: png.toString('base64'), colours },
  );
}

describe('the dashboard in Chromium, two nodes on PostgreSQL', { timeout: 120_000 }, () => {
  test('both nodes appear with data; the charts render a series per node, each colour in the screenshot', async () => {
    const [a, b] = nodes as [NodeProcess, NodeProcess];
    // Traffic: two clients on A and one on B; A's clients broadcast, so B's client receives through the backplane.
    clients.push(await startClient(a.url), await startClient(a.url), await startClient(b.url));
    let n = 0;
    traffic = setInterval(() => {
      const sender = clients[n++ % 2] as signalR.HubConnection;
      sender.invoke('broadcast', `message ${n}`).catch(() => {});
    }, 40);

    assert.ok(browser);
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    context.setDefaultTimeout(STEP_MS);
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => message.type() === 'error' && pageErrors.push(message.text()));
    await page.goto(`http://127.0.0.1:${a.port}/hubwire`);
    await page.waitForFunction(() => document.body.dataset.connected === 'true');

    // Both nodes in the nodes table, alive in the registry, and enough points in every chart.
    await page.waitForFunction(
      ({ ids, min, charts }) => {
        const rows = Array.from(document.querySelectorAll('#nodes tbody tr')).map((tr) => tr.textContent ?? '');
        const alive = ids.every((id) => rows.some((row) => row.includes(id.slice(0, 8)) && row.includes('alive')));
        const filled = charts.every((chart) =>
          ids.every((id) => {
            const line = document.querySelector<SVGPolylineElement>(
              `svg[data-chart="${chart}"] polyline[data-node="${id}"]`,
            );
            return Number(line?.dataset.points) >= min;
          }),
        );
        return alive && filled;
      },
      { ids: [a.nodeId, b.nodeId], min: MIN_POINTS, charts: CHARTS },
      { timeout: STEP_MS },
    );

    const series = await chartSeries(page);
    for (const chart of CHARTS) {
      assert.deepEqual(
        Object.keys(series[chart] ?? {}).sort(),
        [a.nodeId, b.nodeId].sort(),
        `${chart}: one series per node`,
      );
    }
    // The page on A tells the nodes apart: "this page" is A, and both report their address.
    const nodeRows = await page.$$eval('#nodes tbody tr', (rows) => rows.map((row) => row.textContent ?? ''));
    const rowOf = (id: string) => nodeRows.find((row) => row.includes(id.slice(0, 8))) ?? '';
    assert.match(rowOf(a.nodeId), /this page/);
    assert.match(rowOf(a.nodeId), new RegExp(`127\\.0\\.0\\.1:${a.port}`));
    assert.match(rowOf(b.nodeId), new RegExp(`127\\.0\\.0\\.1:${b.port}`));
    assert.doesNotMatch(rowOf(b.nodeId), /this page/);
    // Stream rows from both nodes, and their counters.
    const streamRows = await page.$$eval('#streams tbody tr', (rows) => rows.map((row) => row.textContent ?? ''));
    for (const id of [a.nodeId, b.nodeId])
      assert.ok(streamRows.some((row) => row.includes(id.slice(0, 8)) && row.includes('open')));

    const colours = await page.$$eval('#legend [data-node]', (items) =>
      Object.fromEntries(items.map((item) => [item.getAttribute('data-node'), item.getAttribute('data-colour')])),
    );
    const colourA = colours[a.nodeId] as string;
    const colourB = colours[b.nodeId] as string;
    assert.ok(colourA && colourB && colourA !== colourB, 'each node has a colour of its own');

    const dir = mkdtempSync(join(tmpdir(), 'hubwire-dashboard-'));
    const full = process.env.DASHBOARD_SCREENSHOT ?? join(dir, 'dashboard.png');
    writeFileSync(full, await page.screenshot({ fullPage: true }));
    const chartsPng = await page.locator('.charts').screenshot();
    writeFileSync(join(dir, 'charts.png'), chartsPng);
    console.log(`dashboard screenshots: ${full} and ${join(dir, 'charts.png')}`);

    // Decoded from the PNG: every node's colour drawn across the charts (2-pixel lines, hundreds of pixels).
    const decoder = await context.newPage();
    const counts = await countColours(decoder, chartsPng, [colourA, colourB]);
    assert.ok((counts[colourA] ?? 0) >= 200, `node A's colour ${colourA} in the charts: ${counts[colourA]} pixels`);
    assert.ok((counts[colourB] ?? 0) >= 200, `node B's colour ${colourB} in the charts: ${counts[colourB]} pixels`);
    // Each chart on its own: none is blank; where the nodes differ (A sends to two clients and the viewer, B to one;
    // A holds three connections, B one) both lines show. Lag and received rates may coincide and hide one another.
    for (const chart of CHARTS) {
      const png = await page.locator(`svg[data-chart="${chart}"]`).screenshot();
      const inChart = await countColours(decoder, png, [colourA, colourB]);
      const [pixelsA, pixelsB] = [inChart[colourA] ?? 0, inChart[colourB] ?? 0];
      assert.ok(pixelsA + pixelsB >= 100, `${chart}: ${JSON.stringify(inChart)}`);
      if (chart === 'sent' || chart === 'connections') {
        assert.ok(pixelsA >= 50 && pixelsB >= 50, `${chart} shows both nodes: ${JSON.stringify(inChart)}`);
      }
    }

    // Node B dies (SIGKILL: no clean leave): the registry reports it dead (then prunes it, after four node
    // timeouts), and the page says its snapshots stopped.
    const rowSays = (text: string) =>
      page.waitForFunction(
        ({ id, text }) =>
          Array.from(document.querySelectorAll('#nodes tbody tr')).some(
            (tr) => tr.textContent?.includes(id.slice(0, 8)) && tr.textContent.includes(text),
          ),
        { id: b.nodeId, text },
        { timeout: STEP_MS },
      );
    await b.kill();
    await rowSays('dead');
    await rowSays('no snapshot for');
    assert.deepEqual(pageErrors, []);
    await context.close();
  });
});
