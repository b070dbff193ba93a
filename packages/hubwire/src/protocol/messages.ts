// The hub message model shared by every hub protocol (HubProtocol.md, "Message types").

export const MessageType = {
  Invocation: 1,
  StreamItem: 2,
  Completion: 3,
  StreamInvocation: 4,
  CancelInvocation: 5,
  Ping: 6,
  Close: 7,
  Ack: 8,
  Sequence: 9,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export type Headers = Record<string, string>;

export interface InvocationMessage {
  type: 1;
  headers?: Headers;
  invocationId?: string;
  target: string;
  arguments: unknown[];
  streamIds?: string[];
}

export interface StreamItemMessage {
  type: 2;
  headers?: Headers;
  invocationId: string;
  item: unknown;
}

export interface CompletionMessage {
  type: 3;
  headers?: Headers;
  invocationId: string;
  /** Present only when the invocation produced a value. */
  result?: unknown;
  /** Present only when the invocation failed. */
  error?: string;
  /** True when a result was given (MessagePack distinguishes "void" from "null"). */
  hasResult?: boolean;
}

export interface StreamInvocationMessage {
  type: 4;
  headers?: Headers;
  invocationId: string;
  target: string;
  arguments: unknown[];
  streamIds?: string[];
}

export interface CancelInvocationMessage {
  type: 5;
  headers?: Headers;
  invocationId: string;
}

export interface PingMessage {
  type: 6;
}

export interface CloseMessage {
  type: 7;
  error?: string;
  allowReconnect?: boolean;
}

export interface AckMessage {
  type: 8;
  sequenceId: number;
}

export interface SequenceMessage {
  type: 9;
  sequenceId: number;
}

export type HubMessage =
  | InvocationMessage
  | StreamItemMessage
  | CompletionMessage
  | StreamInvocationMessage
  | CancelInvocationMessage
  | PingMessage
  | CloseMessage
  | AckMessage
  | SequenceMessage;

/** Messages that stateful reconnect numbers and buffers (types 1 to 5). */
export function isTrackable(message: HubMessage): boolean {
  return message.type <= MessageType.CancelInvocation;
}
