// Push wake-ups without NOTIFY: an inotify watch (fs.watch) on the database's directory fires when any process
// writes the WAL; each burst of events costs one small SELECT of the streams' tops, and onChange is called for
// the streams whose top moved. Nothing runs while nobody writes.

import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface WalWatcherOptions {
  /** The database file (absolute). Its directory is watched. */
  readonly file: string;
  /** The current top of every stream, by stream number (one SELECT). Throws when the database is busy. */
  readonly readTops: () => number[];
  readonly onChange: (stream: number) => void;
  readonly onReconnect: () => void;
  readonly onError: (error: Error) => void;
}

/**
 * A commit appends frames to `<file>-wal` with write(2) and only then publishes them in the shared-memory index
 * (`-shm`, an mmap that inotify does not see). An event can therefore be handled a moment before the commit is
 * visible (measured: about 1 event in 200 at 300 appends/s); a check that finds nothing new is repeated after
 * these delays (ms), the second one for a writer that was descheduled in between. The engine's safety poll
 * covers anything slower still.
 */
const RECHECK_MS = [1, 10];
/** Re-watch back-off after the watcher failed (ms). */
const REWATCH_MIN_MS = 50;
const REWATCH_MAX_MS = 5000;

/**
 * Why the directory and not the `-wal` file itself: a watch on a file follows its inode, and SQLite deletes the
 * WAL when the last connection closes (and may recreate it at any later open), so a file watch would silently
 * go deaf. The directory's watch sees the writes to every file in it, including a recreated WAL; events for other
 * files are dropped by name. Only a failing watcher (the directory removed, inotify limits) needs a new watch.
 */
export class WalWatcher {
  readonly #options: WalWatcherOptions;
  readonly #dir: string;
  readonly #dirName: string;
  readonly #names: ReadonlySet<string>;
  #watcher: FSWatcher | undefined;
  /** The top of each stream as of the last check (or this process's own appends, see noteOwnAppend). */
  #known: number[] = [];
  #checkScheduled = false;
  #recheckTimer: NodeJS.Timeout | undefined;
  #recheckStep = 0;
  #rewatchTimer: NodeJS.Timeout | undefined;
  #rewatchDelay = REWATCH_MIN_MS;
  #stopped = false;

  constructor(options: WalWatcherOptions) {
    this.#options = options;
    this.#dir = dirname(options.file);
    this.#dirName = basename(this.#dir);
    const base = basename(options.file);
    this.#names = new Set([base, `${base}-wal`]);
  }

  /** Takes the current tops as the baseline and starts watching. Throws if the watch cannot be set up. */
  start(): void {
    this.#known = this.#options.readTops();
    this.#watch();
  }

  /**
   * This process appended `id` to `stream` itself: when it directly follows the known top, move the baseline so
   * that the coming event does not report our own row as another node's. Otherwise another node committed in
   * between, and the next check reports the stream.
   */
  noteOwnAppend(stream: number, id: number): void {
    if (this.#known[stream] === id - 1) this.#known[stream] = id;
  }

  stop(): void {
    this.#stopped = true;
    this.#checkScheduled = false;
    if (this.#recheckTimer) clearTimeout(this.#recheckTimer);
    if (this.#rewatchTimer) clearTimeout(this.#rewatchTimer);
    this.#recheckTimer = undefined;
    this.#rewatchTimer = undefined;
    this.#closeWatcher();
  }

  #watch(): void {
    // persistent: false, like the engine's idle poll timers: a quiet subscription keeps no process alive.
    const watcher = watch(this.#dir, { persistent: false }, (event, filename) => {
      // No name (some platforms, or an overflowed queue): assume it may be ours.
      if (filename === null || this.#names.has(String(filename))) this.#schedule();
      // The directory itself was removed or moved: the watch is dead without an error. Watch the path again.
      else if (event === 'rename' && String(filename) === this.#dirName) {
        this.#failed(new Error('the directory was moved or removed'));
      }
    });
    watcher.on('error', (error) => this.#failed(error));
    this.#watcher = watcher;
  }

  #closeWatcher(): void {
    const watcher = this.#watcher;
    this.#watcher = undefined;
    if (!watcher) return;
    watcher.removeAllListeners('change');
    try {
      watcher.close();
    } catch {
      // Already closed by its own failure.
    }
  }

  #failed(error: Error): void {
    if (this.#stopped) return;
    this.#closeWatcher();
    this.#options.onError(
      new Error(`SQLite wake-ups: watching ${this.#dir} failed: ${error.message}`, { cause: error }),
    );
    this.#rewatchLater();
  }

  #rewatchLater(): void {
    if (this.#stopped || this.#rewatchTimer) return;
    const delay = this.#rewatchDelay;
    this.#rewatchDelay = Math.min(delay * 2, REWATCH_MAX_MS);
    this.#rewatchTimer = setTimeout(() => {
      this.#rewatchTimer = undefined;
      if (this.#stopped) return;
      try {
        this.#known = this.#options.readTops();
        this.#watch();
      } catch (error) {
        this.#closeWatcher();
        this.#options.onError(asError(error));
        this.#rewatchLater();
        return;
      }
      this.#rewatchDelay = REWATCH_MIN_MS;
      // Commits while nobody watched raised no event: the engine reads every stream.
      this.#call(() => this.#options.onReconnect());
    }, delay);
    this.#rewatchTimer.unref();
  }

  /** Coalesces a burst of events (one commit writes several frames) into one check per event-loop turn. */
  #schedule(): void {
    if (this.#checkScheduled || this.#stopped) return;
    this.#checkScheduled = true;
    setImmediate(() => {
      if (!this.#checkScheduled) return;
      this.#checkScheduled = false;
      if (this.#check()) return;
      // A pending recheck already covers this event: it reads the tops after it.
      if (this.#recheckTimer) return;
      this.#recheckStep = 0;
      this.#recheckLater();
    });
  }

  #recheckLater(): void {
    const delay = RECHECK_MS[this.#recheckStep];
    if (delay === undefined || this.#stopped) return;
    this.#recheckTimer = setTimeout(() => {
      this.#recheckTimer = undefined;
      if (this.#stopped || this.#check()) return;
      this.#recheckStep++;
      this.#recheckLater();
    }, delay);
    this.#recheckTimer.unref();
  }

  /** Compares the tops with the baseline; calls onChange for each stream that moved. True if any did. */
  #check(): boolean {
    if (this.#stopped) return true;
    let tops: number[];
    try {
      tops = this.#options.readTops();
    } catch (error) {
      // Busy or closing: try again shortly; the engine's safety poll covers anything longer.
      this.#options.onError(asError(error));
      return false;
    }
    let moved = false;
    for (let stream = 0; stream < tops.length; stream++) {
      const top = tops[stream]!;
      if (top === this.#known[stream]) continue;
      this.#known[stream] = top;
      moved = true;
      this.#call(() => this.#options.onChange(stream));
    }
    return moved;
  }

  /** A callback that throws must not stop the watcher or reach the event loop. */
  #call(callback: () => void): void {
    try {
      callback();
    } catch (error) {
      this.#options.onError(asError(error));
    }
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
