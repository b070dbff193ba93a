// A backplane's periodic upkeep of its streams: trimming old rows (every trimInterval, keeping keepRows rows and
// keepAgeMs of age per stream) and probing the stream heads (every heartbeatInterval), so a node that fell behind
// knows by how much (its lag).

import type { ResolvedOptions } from './backplane-options.js';
import type { BackplaneStore } from './backplane-store.js';

export class StreamUpkeep {
  /** Trim passes that deleted rows, and the rows they deleted. */
  trims = 0;
  rowsTrimmed = 0;
  private trimTimer: NodeJS.Timeout | undefined;
  private headTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private stopped = false;

  constructor(
    private readonly store: BackplaneStore,
    private readonly options: ResolvedOptions,
    /** Where a probed head goes (the readers). */
    private readonly noteHead: (stream: number, id: number) => void,
    private readonly fail: (error: unknown, where: string) => void,
  ) {}

  start(): void {
    if (this.stopped || this.trimTimer) return;
    this.trimTimer = setInterval(() => void this.trimAll(), this.options.trimInterval);
    this.trimTimer.unref();
    this.headTimer = setInterval(() => void this.probeHeads(), this.options.heartbeatInterval);
    this.headTimer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.trimTimer) clearInterval(this.trimTimer);
    if (this.headTimer) clearInterval(this.headTimer);
  }

  private async trimAll(): Promise<void> {
    for (let stream = 0; stream < this.store.streamCount; stream++) {
      if (this.stopped) return;
      try {
        const trimmed = await this.store.trim(stream, this.options.keepRows, this.options.keepAgeMs);
        if (trimmed > 0) {
          this.trims++;
          this.rowsTrimmed += trimmed;
        }
      } catch (error) {
        this.fail(error, `trimming stream ${stream}`);
      }
    }
  }

  private async probeHeads(): Promise<void> {
    if (this.probing || this.stopped) return;
    this.probing = true;
    try {
      for (let stream = 0; stream < this.store.streamCount && !this.stopped; stream++) {
        this.noteHead(stream, await this.store.top(stream));
      }
    } catch (error) {
      this.fail(error, 'reading the stream heads');
    } finally {
      this.probing = false;
    }
  }
}
