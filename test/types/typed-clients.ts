// Compile-time checks of the hub API's types: `npm run typecheck` fails if a line marked @ts-expect-error
// compiles, or if a correct line does not. Nothing here runs.

import { defineHub, Hub, type HubContext } from 'hubwire';

interface ChatClient {
  broadcastMessage(name: string, message: string): void;
  count(n: number): void;
}

export class TypedHub extends Hub<ChatClient> {
  ok(name: string): Promise<void>[] {
    return [
      this.clients.all.broadcastMessage(name, 'text'),
      this.clients.caller.count(1),
      this.clients.group('g').broadcastMessage(name, 'text'),
      this.clients.others.send('anything', 1, 2, 3),
    ];
  }

  wrong(): void {
    // @ts-expect-error: the client interface has no such method
    void this.clients.all.notAMethod();
    // @ts-expect-error: wrong argument type
    void this.clients.all.count('one');
    // @ts-expect-error: missing argument
    void this.clients.all.broadcastMessage('only name');
    // @ts-expect-error: invoke exists only on single-client proxies
    void this.clients.all.invoke('x');
  }

  async results(): Promise<number> {
    return this.clients.caller.invoke<number>('getNumber');
  }
}

export const plain = defineHub<ChatClient>()({
  send(name: string, message: string) {
    return this.clients.all.broadcastMessage(name, message);
  },
  wrong() {
    // @ts-expect-error: wrong argument count through `this` of a plain-object hub
    return this.clients.all.count();
  },
});

export function outside(context: HubContext): Promise<void> {
  return context.clients.user('ada').send('broadcastMessage', 'system', 'hi');
}
