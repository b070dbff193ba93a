// Stateful reconnect across nodes, as a cluster (issue 15): three Hubwire processes on PostgreSQL (one backplane
// stream, the default) behind HAProxy in round robin with no affinity; official clients over WebSockets, JSON and
// MessagePack. Stateful receivers (withStatefulReconnect(), plus automatic reconnect so that a move that fails shows
// up as onreconnecting) connect through a TCP proxy in front of HAProxy and join a group. Plain senders, straight to
// HAProxy, send numbered messages with awaited invokes, in turn: to all, to the group, to one receiver's user and to
// another receiver's connection id. When a receiver's socket breaks, the official client's single immediate
// transport reconnect goes through round robin, so it usually reaches another node, which takes the connection over.
//   1. Blip, live holder: the TCP proxy drops every receiver's socket, twice; the holders are alive and let go
//      (an invocation a holder was running fails with "moved to another server").
//   2. Chaos, dead holder: the cluster's PostgreSQL connections are cut once, then a node holding receivers (and no
//      sender) is SIGKILLed; the node each of its receivers reaches rebuilds the connection from the newest
//      checkpoint (an invocation the dead node was running fails with "stopped before it completed").
// Checked in both: every acknowledged send (its invoke resolved) reaches every receiver it was addressed to exactly
// once and in its sender's order, and nothing else arrives; no onreconnecting or onclose; the same connection id
// and user after. An acknowledged send is one the sender's node accepted (the backplane's default `acknowledge:
// 'accepted'`): it is written as long as that node lives, hence no sender on the node killed in test 2.

import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import * as signalR from '@microsoft/signalr';
import { dropSchema } from '../helpers/classic-node.js';
import { buildClient, type ProtocolName, startClient } from '../helpers/clients.js';
import { type Haproxy, startRoundRobin } from '../helpers/haproxy.js';
import { type NodeProcess, startNodeProcesses } from '../helpers/node-process.js';
import { terminateBackends } from '../helpers/postgres.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { cleanUpSteps, delay, settle, withTimeout } from '../helpers/wait.js';

const DATABASE_URL = process.env.HUBWIRE_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/test';
const NODES = 3;
/** Stateful receivers (protocols alternate); test 2 adds a few when none landed on a node without a sender. */
const RECEIVERS = 6;
const SENDER_PROTOCOLS: ProtocolName[] = ['json', 'messagepack'];
const GROUP = 'room';
/** A receiver whose socket broke must answer again on some node within this (ms). */
const BLIP_BOUND_MS = 5000;
/** After a SIGKILL: the node reached waits up to 1.5 s for the dead holder, then rebuilds (ms). */
const KILL_BOUND_MS = 8000;
/** Any one send's invoke. */
const SEND_TIMEOUT_MS = 10_000;
/** Waiting for every acknowledged send to arrive; then the quiet period in which a duplicate would show up. */
const DELIVERY_MS = 10_000;
const QUIET_MS = 500;
/** The long-running invocation of test 1 (each blip must be over well before it ends). */
const SLOW_MS = 6000;

type Kind = 'all' | 'group' | 'user' | 'client';

interface Receiver {
  index: number;
  name: string;
  user: string;
  protocol: ProtocolName;
  connection: signalR.HubConnection;
  id: string;
  /** The pid of the node process serving it: at start, then after each break. */
  holders: number[];
  /** Payloads of `message` and `groupMessage` calls, in arrival order (`<sender>|<kind>|<k>`). */
  received: string[];
  seen: Set<string>;
  reconnecting: number;
  closed?: string;
}

interface Send {
  k: number;
  kind: Kind;
  /** A receiver's index, or every receiver (broadcast, group). */
  to: number | 'every';
  acknowledged: boolean;
}

interface Sender {
  index: number;
  connection: signalR.HubConnection;
  pid: number;
  sends: Send[];
  failures: string[];
}

interface Cluster {
  nodes: NodeProcess[];
  haproxy: Haproxy;
  /** In front of HAProxy: the receivers' way in, whose sockets the test drops. */
  proxy: TcpProxy;
  applicationName: string;
  receivers: Receiver[];
  senders: Sender[];
}

const payload = (sender: number, kind: Kind, k: number) => `${sender}|${kind}|${k}`;

/** Three node processes, HAProxy and the TCP proxy; everything is stopped after the test, also when it fails. */
async function startCluster(t: TestContext, tag: string): Promise<Cluster> {
  const schema = `hw_stateful_${tag}_${process.pid}_${Date.now().toString(36)}`;
  // The cluster's own application name, so that cutting its database connections touches no other test.
  const applicationName = `hw_smove_${tag}_${process.pid}`;
  const parts: Partial<Cluster> = { receivers: [], senders: [] };
  t.after(() =>
    cleanUpSteps([
      [
        'clients',
        () =>
          Promise.all(
            [...(parts.receivers ?? []), ...(parts.senders ?? [])].map((c) => c.connection.stop().catch(() => {})),
          ),
      ],
      ['tcp proxy', async () => parts.proxy?.close()],
      ['haproxy', async () => parts.haproxy?.close()],
      ['nodes', () => Promise.all((parts.nodes ?? []).map((n) => n.stop()))],
      ['schema', () => dropSchema(DATABASE_URL, schema)],
    ]),
  );
  parts.nodes = await startNodeProcesses(NODES, [
    '--backplane',
    `${DATABASE_URL}?application_name=${applicationName}`,
    '--schema',
    schema,
    '--heartbeat-ms',
    '200',
    // A receiver's long-running call must not hold up its other invocations.
    '--max-parallel-invocations',
    '4',
  ]);
  parts.haproxy = await startRoundRobin({ backends: parts.nodes.map((node) => node.port) });
  parts.proxy = await startTcpProxy(parts.haproxy.port);
  parts.applicationName = applicationName;
  return parts as Cluster;
}

const nodeOf = (cluster: Cluster, pid: number | undefined) => cluster.nodes.findIndex((n) => n.child.pid === pid);
const path = (cluster: Cluster, r: Receiver) => r.holders.map((pid) => `n${nodeOf(cluster, pid)}`).join('→');

function diagnostics(cluster: Cluster): string {
  const tail = (text: string) => (text.length > 2000 ? `…${text.slice(-2000)}` : text);
  return [
    ...cluster.nodes.map((n, i) => `node n${i} (pid ${n.child.pid}) stderr: ${tail(n.stderr.join('')) || '(empty)'}`),
    `haproxy: ${tail(cluster.haproxy.stderr) || '(empty)'}`,
  ].join('\n');
}

async function connectReceiver(cluster: Cluster, protocol: ProtocolName): Promise<Receiver> {
  const index = cluster.receivers.length;
  const name = `receiver-${index}-${protocol}`;
  const connection = buildClient(`http://127.0.0.1:${cluster.proxy.port}/test`, {
    transport: 'WebSockets',
    protocol,
    token: `user-${name}`,
    statefulReconnect: true,
    automaticReconnect: [0, 100, 200, 500, 1000],
  });
  const receiver: Receiver = {
    index,
    name,
    user: `user-${name}`,
    protocol,
    connection,
    id: '',
    holders: [],
    received: [],
    seen: new Set(),
    reconnecting: 0,
  };
  // Handlers of sends return nothing (a value would be a result the server did not ask for).
  const take = (text: string) => {
    receiver.received.push(text);
    receiver.seen.add(text);
  };
  connection.on('message', (text: string) => {
    take(text);
  });
  connection.on('groupMessage', (_group: string, text: string) => {
    take(text);
  });
  connection.onreconnecting(() => {
    receiver.reconnecting++;
  });
  connection.onclose((error) => {
    receiver.closed = error?.message ?? 'closed';
  });
  cluster.receivers.push(receiver);
  await withTimeout(connection.start(), 10_000, `${name} starting`);
  receiver.id = await connection.invoke<string>('getConnectionId');
  assert.equal(receiver.id, connection.connectionId, `${name}: the hub sees the client's connection id`);
  receiver.holders.push(await connection.invoke<number>('processId'));
  await connection.invoke('joinGroup', GROUP);
  return receiver;
}

async function connectSender(cluster: Cluster, protocol: ProtocolName): Promise<Sender> {
  const index = cluster.senders.length;
  const connection = await withTimeout(
    startClient(`${cluster.haproxy.url}/test`, { transport: 'WebSockets', protocol, token: `sender-${index}` }),
    10_000,
    `sender ${index} starting`,
  );
  const sender: Sender = { index, connection, pid: await connection.invoke('processId'), sends: [], failures: [] };
  cluster.senders.push(sender);
  return sender;
}

/**
 * Every sender sends in rounds, each invoke awaited: to all, to the group, to one receiver's user, to another's
 * connection id (rotating), until stopped.
 */
function startSending(cluster: Cluster) {
  let running = true;
  const { senders, receivers } = cluster;
  const loops = senders.map(async (sender) => {
    for (let round = 0; running; round++) {
      const byUser = receivers[round % receivers.length] as Receiver;
      const byId = receivers[(round + 1 + sender.index) % receivers.length] as Receiver;
      const plan: [Kind, Send['to'], string, unknown[]][] = [
        ['all', 'every', 'broadcast', []],
        ['group', 'every', 'toGroup', [GROUP]],
        ['user', byUser.index, 'toUser', [byUser.user]],
        ['client', byId.index, 'toClient', [byId.id]],
      ];
      for (const [kind, to, method, args] of plan) {
        if (!running) break;
        const send: Send = { k: sender.sends.length + 1, kind, to, acknowledged: false };
        sender.sends.push(send);
        try {
          await withTimeout(
            sender.connection.invoke(method, ...args, payload(sender.index, kind, send.k)),
            SEND_TIMEOUT_MS,
            `sender ${sender.index}'s send ${send.k}`,
          );
          send.acknowledged = true;
        } catch (error) {
          sender.failures.push(`${send.k} ${kind}: ${(error as Error).message}`);
          if (sender.connection.state !== signalR.HubConnectionState.Connected) return;
        }
      }
      await delay(3);
    }
  });
  const acknowledged = () => senders.reduce((n, s) => n + s.sends.filter((x) => x.acknowledged).length, 0);
  return {
    acknowledged,
    /** At least `ms`, and until `count` more sends were acknowledged (at most 3 s more on a busy machine). */
    async phase(ms = 500, count = 40) {
      const mark = acknowledged();
      await delay(ms);
      await settle(() => acknowledged() - mark >= count, 3000);
    },
    async stop() {
      running = false;
      await withTimeout(Promise.all(loops), SEND_TIMEOUT_MS + 2000, 'the senders to stop');
    },
  };
}

const addressedTo = (send: Send, receiver: Receiver) => send.to === 'every' || send.to === receiver.index;

/** Waits until every receiver has every acknowledged send addressed to it, then a quiet period. */
async function waitForDeliveries(cluster: Cluster): Promise<boolean> {
  const wanted = cluster.receivers.map((r) =>
    cluster.senders.flatMap((s) =>
      s.sends.filter((x) => x.acknowledged && addressedTo(x, r)).map((x) => payload(s.index, x.kind, x.k)),
    ),
  );
  const complete = await settle(
    () => cluster.receivers.every((r, i) => (wanted[i] as string[]).every((p) => r.seen.has(p))),
    DELIVERY_MS,
  );
  await delay(QUIET_MS);
  return complete;
}

interface Totals {
  /** Acknowledged sends addressed to receivers, summed over receivers. */
  messages: number;
  lost: number;
  duplicated: number;
  reordered: number;
  unexpected: number;
  /** Sends that were not acknowledged and arrived anyway (allowed, once). */
  unacknowledgedArrived: number;
}

/** Every acknowledged send addressed to a receiver arrived once, in each sender's order, and nothing else. */
function verify(cluster: Cluster): { totals: Totals; problems: string[] } {
  const totals: Totals = { messages: 0, lost: 0, duplicated: 0, reordered: 0, unexpected: 0, unacknowledgedArrived: 0 };
  const problems: string[] = [];
  for (const r of cluster.receivers) {
    const where = `${r.name} (${path(cluster, r)})`;
    const known = r.received.filter((text) => cluster.senders.some((s) => text.startsWith(`${s.index}|`)));
    const strangers = r.received.filter((text) => !known.includes(text));
    totals.unexpected += strangers.length;
    if (strangers.length) problems.push(`${where} got unknown payloads ${strangers.slice(0, 10).join(' ')}`);
    for (const s of cluster.senders) {
      const got = known.filter((text) => text.startsWith(`${s.index}|`));
      const ks = got.map((text) => Number(text.split('|')[2]));
      const counts = new Map<number, number>();
      for (const k of ks) counts.set(k, (counts.get(k) ?? 0) + 1);
      const duplicated = [...counts].filter(([, n]) => n > 1).map(([k]) => k);
      const reordered = ks.filter((k, i) => i > 0 && k < (ks[i - 1] as number));
      const unexpected = got.filter((text) => {
        const [, kind, k] = text.split('|');
        const send = s.sends[Number(k) - 1];
        return !send || send.kind !== kind || !addressedTo(send, r);
      });
      const addressed = s.sends.filter((x) => addressedTo(x, r));
      const lost = addressed.filter((x) => x.acknowledged && !counts.has(x.k)).map((x) => x.k);
      totals.messages += addressed.filter((x) => x.acknowledged).length;
      totals.lost += lost.length;
      totals.duplicated += duplicated.length;
      totals.reordered += reordered.length;
      totals.unexpected += unexpected.length;
      totals.unacknowledgedArrived += addressed.filter((x) => !x.acknowledged && counts.has(x.k)).length;
      const from = `from sender ${s.index}`;
      if (lost.length) problems.push(`${where} lost ${lost.length} ${from}: ${lost.slice(0, 20).join(',')}`);
      if (duplicated.length) problems.push(`${where} got twice ${from}: ${duplicated.slice(0, 20).join(',')}`);
      if (reordered.length) problems.push(`${where} out of order ${from} at ${reordered.slice(0, 20).join(',')}`);
      if (unexpected.length) problems.push(`${where} got what was not for it: ${unexpected.slice(0, 10).join(' ')}`);
    }
  }
  return { totals, problems };
}

/** The receiver's node after a break: its invoke waits in the client's buffer until the transport is back. */
async function holderAfterBreak(r: Receiver, since: number, bound: number, problems: string[]): Promise<number> {
  try {
    const pid = await withTimeout(r.connection.invoke<number>('processId'), bound, `${r.name} to answer`);
    r.holders.push(pid);
    return Date.now() - since;
  } catch (error) {
    problems.push(`${r.name} did not answer after the break (bound ${bound} ms): ${(error as Error).message}`);
    return Number.NaN;
  }
}

/** The connection is the same one, with the same user: checked on whichever node serves it now. */
async function checkIdentity(r: Receiver, problems: string[]): Promise<void> {
  try {
    const [id, user] = await withTimeout(
      Promise.all([r.connection.invoke<string>('getConnectionId'), r.connection.invoke<string>('getUserId')]),
      5000,
      `${r.name}'s identity`,
    );
    if (id !== r.id || r.connection.connectionId !== r.id) {
      problems.push(`${r.name}: connection id ${r.id} became ${id} (client: ${r.connection.connectionId})`);
    }
    if (user !== r.user) problems.push(`${r.name}: user ${r.user} became ${user}`);
  } catch (error) {
    problems.push(`${r.name}: ${(error as Error).message}`);
  }
}

function lifecycleProblems(cluster: Cluster): string[] {
  return cluster.receivers.flatMap((r) => [
    ...(r.reconnecting ? [`${r.name} (${path(cluster, r)}): onreconnecting ${r.reconnecting}×`] : []),
    ...(r.closed ? [`${r.name} (${path(cluster, r)}): onclose (${r.closed})`] : []),
    ...(r.connection.state !== signalR.HubConnectionState.Connected ? [`${r.name}: ${r.connection.state}`] : []),
  ]);
}

const stats = (ms: number[]) => {
  const sorted = ms.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!sorted.length) return '-';
  return `median ${sorted[Math.floor(sorted.length / 2)]} ms, max ${sorted.at(-1)} ms`;
};

describe('stateful reconnect across nodes, as a cluster behind round-robin HAProxy', { timeout: 110_000 }, () => {
  test('blip, live holder: sockets dropped twice, reconnects land anywhere; nothing lost, nothing twice', {
    timeout: 50_000,
  }, async (t) => {
    const cluster = await startCluster(t, 'blip');
    for (const protocol of SENDER_PROTOCOLS) await connectSender(cluster, protocol);
    for (let i = 0; i < RECEIVERS; i++) await connectReceiver(cluster, i % 2 === 0 ? 'json' : 'messagepack');
    const receivers = cluster.receivers;
    const problems: string[] = [];

    // A long-running invocation on every receiver: the node it runs on fails it if the connection moves away.
    const slowStartedAt = Date.now();
    const slow = receivers.map((r) =>
      r.connection.invoke('slow', SLOW_MS, 'late').then(
        (value) => `completed ${value}`,
        (error: Error) => error.message,
      ),
    );
    const sending = startSending(cluster);
    await sending.phase();
    const beforeBlips = sending.acknowledged();
    const blips: { at: number; times: number[]; moved: number; endedAt: number }[] = [];
    for (let b = 0; b < 2; b++) {
      if (b > 0) {
        await delay(300);
        // The receivers reconnect in much the same order each time: with as many of them as a multiple of the nodes,
        // round robin would bring each back to the node it is on. One request through the balancer shifts it.
        await fetch(`${cluster.haproxy.url}/nudge`, { signal: AbortSignal.timeout(5000) }).then((r) => r.arrayBuffer());
      }
      const at = Date.now();
      cluster.proxy.dropAll();
      const times = await Promise.all(receivers.map((r) => holderAfterBreak(r, at, BLIP_BOUND_MS, problems)));
      const moved = receivers.filter((r) => r.holders.length === b + 2 && r.holders[b + 1] !== r.holders[b]).length;
      blips.push({ at, times, moved, endedAt: Date.now() });
    }
    const beforeLast = sending.acknowledged();
    await sending.phase();
    await sending.stop();
    const complete = await waitForDeliveries(cluster);
    const { totals, problems: deliveryProblems } = verify(cluster);
    problems.push(...deliveryProblems, ...lifecycleProblems(cluster));
    for (const r of receivers) await checkIdentity(r, problems);

    // The slow invocations: failed with the move's error where the connection moved while it ran, else completed.
    const results = await withTimeout(Promise.all(slow), SLOW_MS + 5000, 'the slow invocations to end');
    const slowDeadline = slowStartedAt + SLOW_MS - 1000;
    const slowChecks = { moved: 0, completed: 0 };
    receivers.forEach((r, i) => {
      const result = results[i] as string;
      const blipsInTime = blips.filter((b) => b.endedAt < slowDeadline).length;
      const movedWhileRunning = r.holders.slice(1, blipsInTime + 1).some((pid, b) => pid !== r.holders[b]);
      const movedAtAll = r.holders.slice(1).some((pid, b) => pid !== r.holders[b]);
      if (/moved to another server/.test(result)) {
        slowChecks.moved++;
        if (!movedAtAll) problems.push(`${r.name} (${path(cluster, r)}) never moved, but its slow call got: ${result}`);
      } else if (result === 'completed late') {
        slowChecks.completed++;
        if (movedWhileRunning) problems.push(`${r.name} (${path(cluster, r)}) moved, but its slow call completed`);
      } else {
        problems.push(`${r.name} (${path(cluster, r)}): slow call ended with '${result}'`);
      }
    });

    const moved = receivers.filter((r) => new Set(r.holders).size > 1);
    const senderFailures = cluster.senders.flatMap((s) => s.failures.map((f) => `sender ${s.index}: ${f}`));
    const sent = cluster.senders.reduce((n, s) => n + s.sends.length, 0);
    console.log(
      `[stateful-move blip] receivers ${receivers.length} (json ${receivers.filter((r) => r.protocol === 'json').length}, ` +
        `messagepack ${receivers.filter((r) => r.protocol === 'messagepack').length}), ` +
        `moved ${moved.length} (blip 1: ${blips[0]?.moved}, blip 2: ${blips[1]?.moved}), ` +
        `sent ${sent}, acknowledged ${sending.acknowledged()} (before blips ${beforeBlips}, between/after ${beforeLast - beforeBlips}/${sending.acknowledged() - beforeLast}), ` +
        `messages ${totals.messages}, lost ${totals.lost}, duplicated ${totals.duplicated}, reordered ${totals.reordered}, ` +
        `unexpected ${totals.unexpected}, unacknowledged arrived ${totals.unacknowledgedArrived}, ` +
        `onreconnecting ${receivers.reduce((n, r) => n + r.reconnecting, 0)}, ` +
        `back after blip 1: ${stats(blips[0]?.times ?? [])}, blip 2: ${stats(blips[1]?.times ?? [])}, ` +
        `slow calls failed "moved" ${slowChecks.moved} / completed ${slowChecks.completed}, ` +
        `paths [${receivers.map((r) => path(cluster, r)).join(' ')}]`,
    );
    const nodeErrors = cluster.nodes.filter((n) => n.stderr.join('').trim() !== '');
    if (problems.length || !complete || senderFailures.length || nodeErrors.length) {
      console.log(diagnostics(cluster));
    }
    assert.ok(beforeBlips >= 10 && sending.acknowledged() - beforeLast >= 10, 'traffic before and after the blips');
    assert.deepEqual(senderFailures, [], 'every send acknowledged');
    assert.deepEqual(problems, [], 'deliveries, lifecycle, identity and slow calls');
    assert.ok(complete, 'every acknowledged send arrived');
    assert.ok(moved.length >= 1, 'at least one receiver moved to another node');
    assert.deepEqual(
      nodeErrors.map((n) => n.stderr.join('')),
      [],
      'no node reported an error',
    );
  });

  test('chaos, dead holder: database connections cut, then the holder SIGKILLed; its receivers move, nothing lost', {
    timeout: 55_000,
  }, async (t) => {
    const cluster = await startCluster(t, 'chaos');
    for (const protocol of SENDER_PROTOCOLS) await connectSender(cluster, protocol);
    const senderNodes = new Set(cluster.senders.map((s) => nodeOf(cluster, s.pid)));
    const free = cluster.nodes.map((_, i) => i).filter((i) => !senderNodes.has(i));
    assert.ok(free.length > 0, 'a node without a sender');
    const onFree = () => cluster.receivers.filter((r) => free.includes(nodeOf(cluster, r.holders[0])));
    // Enough receivers, some of them on a node without a sender (round robin spreads them; a few more if not).
    for (let i = 0; i < RECEIVERS || (onFree().length < 2 && i < 2 * RECEIVERS); i++) {
      await connectReceiver(cluster, i % 2 === 0 ? 'json' : 'messagepack');
    }
    const receivers = cluster.receivers;
    const perNode = cluster.nodes.map((_, i) => receivers.filter((r) => nodeOf(cluster, r.holders[0]) === i).length);
    const victim = free.reduce((best, i) => ((perNode[i] as number) > (perNode[best] as number) ? i : best));
    const victimNode = cluster.nodes[victim] as NodeProcess;
    const onVictim = receivers.filter((r) => nodeOf(cluster, r.holders[0]) === victim);
    assert.ok(onVictim.length > 0, `receivers on the node to kill: per node ${perNode.join(', ')}`);
    const problems: string[] = [];

    const sending = startSending(cluster);
    await sending.phase();
    const beforeCut = sending.acknowledged();
    const cut = await terminateBackends(DATABASE_URL, cluster.applicationName);
    await sending.phase(800);
    // Everyone caught up after the cut: the database is back.
    const caughtUp = await waitForDeliveries(cluster);
    if (!caughtUp) problems.push('the receivers did not catch up after the database connections were cut');
    const beforeKill = sending.acknowledged();

    // A long-running invocation on every receiver of the node to be killed; an echo after it comes back through the
    // same node's outbox, so once it answers, the slow call's mark is committed.
    const slow = onVictim.map((r) =>
      r.connection.invoke('slow', 30_000, 'late').then(
        (value) => `completed ${value}`,
        (error: Error) => error.message,
      ),
    );
    await Promise.all(onVictim.map((r) => withTimeout(r.connection.invoke('echo', 1), 5000, `${r.name}'s echo`)));
    await delay(200);
    const killedAt = Date.now();
    await victimNode.kill();
    const moveTimes = await Promise.all(onVictim.map((r) => holderAfterBreak(r, killedAt, KILL_BOUND_MS, problems)));
    const slowResults = await withTimeout(Promise.all(slow), 5000, 'the slow calls of the dead node to end');
    await sending.phase();
    await sending.stop();
    const complete = await waitForDeliveries(cluster);
    const { totals, problems: deliveryProblems } = verify(cluster);
    problems.push(...deliveryProblems, ...lifecycleProblems(cluster));
    // Where everyone is now; the same connections.
    const others = receivers.filter((r) => !onVictim.includes(r));
    for (const r of others) await holderAfterBreak(r, Date.now(), 5000, problems);
    for (const r of receivers) await checkIdentity(r, problems);
    for (const r of onVictim) {
      const now = nodeOf(cluster, r.holders.at(-1));
      if (now === victim || now < 0) problems.push(`${r.name} (${path(cluster, r)}) is not on a surviving node`);
    }
    onVictim.forEach((r, i) => {
      const result = slowResults[i] as string;
      if (!/stopped before it completed/.test(result)) {
        problems.push(`${r.name}'s slow call on the killed node ended with '${result}'`);
      }
    });
    const exits = cluster.nodes
      .map((node, i) => ({ i, code: node.child.exitCode, signal: node.child.signalCode }))
      .filter((n) => n.i !== victim && (n.code !== null || n.signal !== null));
    const senderFailures = cluster.senders.flatMap((s) => s.failures.map((f) => `sender ${s.index}: ${f}`));
    const sent = cluster.senders.reduce((n, s) => n + s.sends.length, 0);
    const acked = sending.acknowledged();
    console.log(
      `[stateful-move chaos] receivers ${receivers.length} (per node [${perNode.join(', ')}]), db connections cut ${cut}, ` +
        `killed n${victim} holding ${onVictim.length}, moved ${onVictim.filter((r) => r.holders.length > 1 && r.holders.at(-1) !== r.holders[0]).length} ` +
        `(to ${onVictim.map((r) => path(cluster, r)).join(' ')}), moved in ${stats(moveTimes)} after the kill, ` +
        `sent ${sent}, acknowledged ${acked} (before cut ${beforeCut}, before kill ${beforeKill}, after ${acked - beforeKill}), ` +
        `messages ${totals.messages}, lost ${totals.lost}, duplicated ${totals.duplicated}, reordered ${totals.reordered}, ` +
        `unexpected ${totals.unexpected}, unacknowledged arrived ${totals.unacknowledgedArrived}, ` +
        `onreconnecting ${receivers.reduce((n, r) => n + r.reconnecting, 0)}, onclose ${receivers.filter((r) => r.closed).length}, ` +
        `slow calls "stopped before it completed" ${slowResults.filter((x) => /stopped before it completed/.test(x)).length}/${slowResults.length}, ` +
        `sender failures ${senderFailures.length}`,
    );
    if (problems.length || !complete || senderFailures.length || exits.length) console.log(diagnostics(cluster));
    assert.ok(
      beforeCut >= 10 && beforeKill - beforeCut >= 10 && acked - beforeKill >= 10,
      `traffic in every phase: ${beforeCut}, ${beforeKill - beforeCut}, ${acked - beforeKill} acknowledged`,
    );
    assert.ok(cut >= NODES, `the cluster's database connections were cut (${cut})`);
    assert.deepEqual(senderFailures, [], 'every send acknowledged (no sender was on the killed node)');
    assert.deepEqual(problems, [], 'deliveries, lifecycle, moves and slow calls');
    assert.ok(complete, 'every acknowledged send arrived');
    assert.deepEqual(exits, [], 'no node but the killed one exited');
  });
});
