// Picks a backplane package by URL scheme, so the chat demo, the CLI and apps can say `--backplane <url>`.
// The database packages are optional: each is loaded only when its scheme is used.

import { HubwireError } from '../errors.js';
import { Backplane } from './backplane.js';
import type { BackplaneOptions } from './backplane-options.js';
import type { BackplaneStore } from './backplane-store.js';

/** What a backplane package exports for URL-based set-up. */
export interface BackplanePackage {
  createStore(url: string, options: StoreUrlOptions): BackplaneStore;
  installSchema(url: string, options: StoreUrlOptions): Promise<{ epoch: string; version: number } | unknown>;
}

export interface StoreUrlOptions {
  /** Schema (PostgreSQL) or table prefix. Default `hubwire`. */
  schema?: string;
  /** Number of streams. Default 1. */
  tableCount?: number;
}

const PACKAGES: { test: (url: string) => boolean; name: string }[] = [
  { test: (url) => /^postgres(ql)?:\/\//i.test(url), name: '@hubwire/postgres' },
  { test: (url) => /^sqlite:/i.test(url) || /\.(db|sqlite3?)$/i.test(url), name: '@hubwire/sqlite' },
  { test: (url) => /^(mysql|mariadb):\/\//i.test(url), name: '@hubwire/mysql' },
];

export async function loadBackplanePackage(url: string): Promise<BackplanePackage> {
  const entry = PACKAGES.find((p) => p.test(url));
  if (!entry) {
    throw new HubwireError(
      'HW_ERR_INVALID_OPTION',
      `No backplane handles '${url.replace(/\/\/[^@/]*@/, '//***@')}': use postgres://…, mysql://… or sqlite:<file>.`,
    );
  }
  try {
    return (await import(entry.name)) as BackplanePackage;
  } catch (error) {
    throw new HubwireError('HW_ERR_INVALID_OPTION', `Install ${entry.name} to use this backplane URL.`, {
      cause: error,
    });
  }
}

/** A backplane for `new Hubwire({ backplane })` from a URL (postgres://… or sqlite:<file>). */
export async function backplaneFromUrl(
  url: string,
  options: StoreUrlOptions & BackplaneOptions = {},
): Promise<Backplane> {
  const backplanePackage = await loadBackplanePackage(url);
  const { schema, tableCount, ...engineOptions } = options;
  return new Backplane(backplanePackage.createStore(url, { schema, tableCount }), engineOptions);
}
