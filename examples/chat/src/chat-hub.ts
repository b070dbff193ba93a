// The chat hub of the example (a contract the tests rely on: send, joinGroup, leaveGroup, sendToGroup, echo,
// countTo).

import { Hub } from 'hubwire';

/** What chat clients implement. */
export interface ChatClient {
  broadcastMessage(name: string, message: string): void;
}

export class ChatHub extends Hub<ChatClient> {
  send(name: string, message: string): Promise<void> {
    return this.clients.all.broadcastMessage(name, message);
  }

  joinGroup(group: string): Promise<void> {
    return this.groups.add(this.context.connectionId, group);
  }

  leaveGroup(group: string): Promise<void> {
    return this.groups.remove(this.context.connectionId, group);
  }

  sendToGroup(group: string, name: string, message: string): Promise<void> {
    return this.clients.group(group).broadcastMessage(name, message);
  }

  echo(value: unknown): unknown {
    return value;
  }

  async *countTo(n: number): AsyncGenerator<number> {
    for (let i = 1; i <= n; i++) yield i;
  }
}
