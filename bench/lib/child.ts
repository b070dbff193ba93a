// A bench child process seen from the parent: spawn, typed IPC, bounded waits, and a kill on every exit path.

import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { log, SetupError } from './common.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/**
 * How every bench child runs: TypeScript through tsx, and `hubwire` resolved as the parent resolves it: to its
 * sources when the parent runs with `--conditions=hubwire-source`, else to the compiled packages (dist/), as an
 * application that installed them runs them (the bench script builds them first).
 */
const NODE_ARGS = [
  ...(process.execArgv.includes('--conditions=hubwire-source') ? ['--conditions=hubwire-source'] : []),
  '--import',
  'tsx',
];

const live = new Set<ChildProcess>();

/** Kills every child still running; safe to call from an 'exit' handler (synchronous). */
export function killAllChildren(): void {
  for (const child of live) child.kill('SIGKILL');
  live.clear();
}

interface Waiter<M> {
  match(message: M): boolean;
  resolve(message: M): void;
  reject(error: Error): void;
}

export class Child<In, Out extends { type: string }> {
  private readonly process: ChildProcess;
  private readonly waiters = new Set<Waiter<Out>>();
  private readonly listeners = new Set<(message: Out) => void>();
  private failure: Error | undefined;
  private stopping = false;
  private nextId = 1;

  constructor(
    readonly name: string,
    script: string,
    args: string[],
    env: Record<string, string>,
    nodeArgs: string[] = [],
  ) {
    this.process = spawn(process.execPath, [...nodeArgs, ...NODE_ARGS, script, ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Structured clone: histograms cross as typed arrays.
      serialization: 'advanced',
    });
    live.add(this.process);
    this.process.on('message', (message: Out) => {
      if (message.type === 'fatal') this.fail(new Error((message as unknown as { message: string }).message));
      for (const listener of this.listeners) listener(message);
      for (const waiter of this.waiters) {
        if (waiter.match(message)) {
          this.waiters.delete(waiter);
          waiter.resolve(message);
        }
      }
    });
    this.process.on('error', (error) => this.fail(error));
    this.process.on('exit', (code, signal) => {
      live.delete(this.process);
      if (!this.stopping) this.fail(new Error(`${name} exited unexpectedly (${signal ?? `code ${code}`}).`));
    });
  }

  /** The first error of this child (a 'fatal' report, a crash); every pending and later wait rejects with it. */
  get error(): Error | undefined {
    return this.failure;
  }

  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    for (const waiter of this.waiters) waiter.reject(error);
    this.waiters.clear();
  }

  send(message: In): void {
    if (this.failure) throw this.failure;
    if (this.process.connected) this.process.send(message as object);
  }

  /** Calls `listener` for every message until the returned function is called. */
  listen(listener: (message: Out) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The next message matching `match`, within `timeoutMs`. */
  wait(match: (message: Out) => boolean, timeoutMs: number, what: string): Promise<Out> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Out>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.name}: no ${what} within ${Math.round(timeoutMs / 1000)} s.`));
      }, timeoutMs);
      const waiter: Waiter<Out> = {
        match,
        resolve: (message) => {
          clearTimeout(timer);
          resolve(message);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Sends a message carrying a fresh id and waits for the answer with that id. */
  request(build: (id: number) => In, timeoutMs: number, what: string): Promise<Out> {
    const id = this.nextId++;
    const answer = this.wait((m) => (m as { id?: number }).id === id, timeoutMs, what);
    this.send(build(id));
    return answer;
  }

  /** Ends the child: SIGTERM (or `graceful` first), then SIGKILL if it lingers. */
  async stop(graceful?: In): Promise<void> {
    this.stopping = true;
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.process.once('exit', () => resolve()));
    if (graceful !== undefined && this.process.connected) this.process.send(graceful as object);
    else this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * A bench parent's exits: children are killed whenever it exits; on SIGINT / SIGTERM it logs why (`stopping`
 * says what it stops), runs `cleanUp` and exits 130; past `deadlineSeconds`, unless `finished()`, likewise with 1.
 */
export function stopOnSignalsAndDeadline(options: {
  script: string;
  deadlineSeconds: number;
  stopping: string;
  cleanUp: () => Promise<unknown>;
  finished: () => boolean;
}): void {
  const log = (text: string) => process.stderr.write(`${text}\n`);
  process.on('exit', killAllChildren);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      log(`\nInterrupted (${signal}); ${options.stopping}.`);
      killAllChildren();
      void options.cleanUp().finally(() => process.exit(130));
    });
  }
  setTimeout(() => {
    if (options.finished()) return;
    log(`\n${options.script}: deadline of ${options.deadlineSeconds} s passed; stopping.`);
    killAllChildren();
    void options.cleanUp().finally(() => process.exit(1));
  }, options.deadlineSeconds * 1000).unref();
}

/**
 * Runs a bench parent's `main` and exits with its code (1 when it threw: a SetupError's message alone, else the
 * stack), after killing the children and running `cleanUp`.
 */
export function runParent(script: string, main: () => Promise<number>, cleanUp: () => Promise<unknown>): void {
  let exitCode = 1;
  main()
    .then((code) => {
      exitCode = code;
    })
    .catch((error: Error) => {
      log(`\n${script} failed: ${error instanceof SetupError ? error.message : (error.stack ?? error.message)}`);
    })
    .finally(async () => {
      killAllChildren();
      await cleanUp();
      process.exit(exitCode);
    });
}
