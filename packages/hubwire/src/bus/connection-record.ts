// What a connection that may move between nodes keeps in the backplane (a stateful-reconnect connection of the
// ASP.NET Core protocol, without sticky sessions). Every message its client is sent and every client message it
// processed goes through the stream in order, so any node can rebuild where the connection stood from a checkpoint
// and the rows after it (hub/moves/): its holder writes a message to the client, or counts a processed client
// message, only when it reads the record back.

import type { CompletionMessage, InvocationMessage, StreamItemMessage } from '../protocol/messages.js';

/** A message for the client that does not come from a send to an audience. */
export type RecordedMessage = InvocationMessage | StreamItemMessage | CompletionMessage;

export type ConnectionRecord =
  /** A message for the client: a completion, a stream item, or a client-result invocation. */
  | { kind: 'message'; message: RecordedMessage }
  /**
   * The client's trackable message `sequenceId` was taken (published before the hub ran it, so a node that reads
   * anything it caused reads this first). `invocationId` names an invocation that now runs until its completion.
   */
  | { kind: 'mark'; sequenceId: number; invocationId: string | undefined };
