// An invocation sent to many connections: encoded at most once per hub protocol, at the first connection that
// needs that protocol.

import type { HubProtocol } from './hub-protocol.js';
import { type InvocationMessage, MessageType } from './messages.js';

export class SerializedMessage {
  readonly message: InvocationMessage;
  private firstProtocol: HubProtocol | undefined;
  private firstBytes: Buffer | undefined;
  private others: Map<HubProtocol, Buffer> | undefined;

  constructor(target: string, args: unknown[]) {
    this.message = { type: MessageType.Invocation, target, arguments: args };
  }

  bytesFor(protocol: HubProtocol): Buffer {
    if (this.firstProtocol === protocol) return this.firstBytes as Buffer;
    if (this.firstProtocol === undefined) {
      this.firstProtocol = protocol;
      this.firstBytes = protocol.encode(this.message);
      return this.firstBytes;
    }
    this.others ??= new Map();
    let bytes = this.others.get(protocol);
    if (!bytes) {
      bytes = protocol.encode(this.message);
      this.others.set(protocol, bytes);
    }
    return bytes;
  }
}
