// A hub exercising every feature the end-to-end tests check.

import { Hub, HubError } from 'hubwire';

export interface TestClient {
  message(text: unknown): void;
  groupMessage(group: string, text: unknown): void;
}

/** Observations the tests read back (per server instance). */
export const observations = {
  cancelledStreams: 0,
  disconnected: [] as string[],
};

export class TestHub extends Hub<TestClient> {
  echo(value: unknown): unknown {
    return value;
  }
  add(a: number, b: number): number {
    return a + b;
  }
  noReturn(): void {}
  getConnectionId(): string {
    return this.context.connectionId;
  }
  getUserId(): string | undefined {
    return this.context.userIdentifier;
  }
  getTransport(): string {
    return this.context.transport;
  }
  throwHubError(message: string): never {
    throw new HubError(message);
  }
  throwPlain(): never {
    throw new Error('secret internal detail');
  }
  broadcast(text: unknown): Promise<void> {
    return this.clients.all.message(text);
  }
  toCaller(text: unknown): Promise<void> {
    return this.clients.caller.message(text);
  }
  toOthers(text: unknown): Promise<void> {
    return this.clients.others.message(text);
  }
  toClient(connectionId: string, text: unknown): Promise<void> {
    return this.clients.client(connectionId).message(text);
  }
  toAllExcept(connectionId: string, text: unknown): Promise<void> {
    return this.clients.allExcept([connectionId]).message(text);
  }
  toUser(userId: string, text: unknown): Promise<void> {
    return this.clients.user(userId).message(text);
  }
  toUsers(userIds: string[], text: unknown): Promise<void> {
    return this.clients.users(userIds).message(text);
  }
  joinGroup(group: string): Promise<void> {
    return this.groups.add(this.context.connectionId, group);
  }
  leaveGroup(group: string): Promise<void> {
    return this.groups.remove(this.context.connectionId, group);
  }
  toGroup(group: string, text: unknown): Promise<void> {
    return this.clients.group(group).groupMessage(group, text);
  }
  toGroups(groups: string[], text: unknown): Promise<void> {
    return this.clients.groups(groups).groupMessage(groups.join(','), text);
  }
  toGroupExcept(group: string, connectionId: string, text: unknown): Promise<void> {
    return this.clients.groupExcept(group, [connectionId]).groupMessage(group, text);
  }
  toOthersInGroup(group: string, text: unknown): Promise<void> {
    return this.clients.othersInGroup(group).groupMessage(group, text);
  }
  async *countTo(n: number): AsyncGenerator<number> {
    for (let i = 1; i <= n; i++) yield i;
  }
  async *forever(): AsyncGenerator<number> {
    let i = 0;
    try {
      while (!this.signal.aborted) {
        yield i++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      observations.cancelledStreams++;
    }
  }
  async *failingStream(): AsyncGenerator<number> {
    yield 1;
    throw new HubError('stream broke');
  }
  async sum(numbers: AsyncIterable<number>): Promise<number> {
    let total = 0;
    for await (const n of numbers) total += n;
    return total;
  }
  async *doubleEach(numbers: AsyncIterable<number>): AsyncGenerator<number> {
    for await (const n of numbers) yield n * 2;
  }
  async askCaller(question: string): Promise<unknown> {
    return this.clients.caller.invoke('answer', question);
  }
  async askClient(connectionId: string, question: string): Promise<unknown> {
    return this.clients.client(connectionId).invokeWithOptions('answer', [question], { timeout: 2000 });
  }
  async slow(ms: number, value: unknown): Promise<unknown> {
    await new Promise((resolve) => setTimeout(resolve, ms));
    return value;
  }
  override onDisconnected(): void {
    observations.disconnected.push(this.context.connectionId);
  }
}
