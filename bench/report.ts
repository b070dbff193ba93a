// What the benches share to report: number formatting, plain-text and Markdown tables, and the results file
// (bench/results/<bench>-<timestamp>.json, git-ignored).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/child.js';

// --- Numbers -----------------------------------------------------------------------------------------------------

/** Rounded, with thousands separators; '-' when not a finite number. */
export function int(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US');
}

/** `digits` decimals; '-' when not a finite number. */
export function fixed(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(digits);
}

/** A share as a whole percentage (1 = 100%); '-' when not a finite number. */
export function percent(n: number | undefined): string {
  return n === undefined || !Number.isFinite(n) ? '-' : `${Math.round(n * 100)}%`;
}

/** The median; NaN of nothing. */
export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median of the finite values (NaN, ±Infinity left out); NaN when there are none. */
export function finiteMedian(values: number[]): number {
  return median(values.filter((x) => Number.isFinite(x)));
}

// --- Tables ------------------------------------------------------------------------------------------------------

/** A plain-text table: the first `left` columns left-aligned, the others right-aligned, the last one free. */
export function renderTable(header: string[], rows: string[][], left = 2, indent = ''): string {
  const widths = header.map((h, i) =>
    i === header.length - 1 ? 0 : Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    indent +
    cells
      .map((c, i) =>
        i === cells.length - 1 ? c : i < left ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w, i) => '-'.repeat(w || (header[i] ?? '').length))), ...rows.map(line)].join(
    '\n',
  );
}

/**
 * A Markdown table: the columns whose index `leftAligned` lists are left-aligned, the others right-aligned (and
 * marked so in the separator row).
 */
export function markdownTable(header: string[], rows: string[][], leftAligned: readonly number[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const left = (i: number) => leftAligned.includes(i);
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (left(i) ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join(' | ')} |`;
  const separator = `| ${widths.map((w, i) => (left(i) ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`;
  return [line(header), separator, ...rows.map(line)].join('\n');
}

// --- Results file ------------------------------------------------------------------------------------------------

/** A URL with its credentials elided, for the results file. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//…@');
}

/**
 * Writes `json` (pretty-printed, newline-terminated) to bench/results/<bench>-<at as ISO, ':' and '.' → '-'>.json
 * and returns the file's path.
 */
export function writeResultsFile(bench: string, at: Date, json: unknown): string {
  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${bench}-${at.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return file;
}
