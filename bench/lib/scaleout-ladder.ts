// The scaleout bench's ladders: per database and pass, each shape's offered rate stepped up for every system side by
// side (a failed step retried once on fresh processes), the closed loop of invokes, and the sustained rates.

import {
  DATABASE_LABEL,
  type DatabaseName,
  SHAPES,
  type Shape,
  SYSTEM_CODE,
  SYSTEM_LABEL,
  type SystemName,
} from './scaleout.js';
import { type Cluster, Clusters } from './scaleout-cluster.js';
import { rateText, type ShapeSummary, type StepResult } from './scaleout-results.js';
import {
  budget,
  budgetLeftSeconds,
  CONFIG,
  errors,
  log,
  notes,
  results,
  shareOfTimeLeft,
  systemsOf,
} from './scaleout-run.js';
import { dropBackplane, envFor, freshBackplane } from './scaleout-scratch.js';
import { stepLine } from './scaleout-step.js';

async function runShape(pass: number, database: DatabaseName, shape: Shape, clusters: Clusters, systems: SystemName[]) {
  const summary: ShapeSummary = { pass, database, shape: shape.name, sustained: {} };
  const active = new Set<SystemName>();
  const best = new Map<SystemName, StepResult>();
  for (const system of systems) {
    try {
      await clusters.ready(system, shape);
      active.add(system);
    } catch (error) {
      const message = `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label}, ${SYSTEM_LABEL[system]}: could not start: ${(error as Error).message}`;
      errors.push(message);
      log(`  ${message}`);
      await clusters.stop(system);
    }
  }
  /** Systems that ran a step of this shape (the time budget may leave none). */
  const ran = new Set<SystemName>();
  const ladder = CONFIG.rates[shape.name];
  for (const [i, rate] of ladder.entries()) {
    if (active.size === 0) break;
    if (budgetLeftSeconds() < 10) {
      notes.push(
        `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label} stopped at ${rateText(rate)}/s: time budget (BENCH_DEADLINE_S).`,
      );
      log(`  time budget reached: stops before ${rateText(rate)}/s`);
      break;
    }
    const order = [...active];
    const rotated = order.map((_, k) => order[(k + pass + i) % order.length] as SystemName);
    for (const system of rotated) {
      let final: StepResult | undefined;
      for (let attempt = 1; attempt <= 1 + CONFIG.retries; attempt++) {
        try {
          // A retry on fresh processes: a failed step may leave a backlog behind (queued queries, buffers).
          const cluster = attempt > 1 ? await clusters.start(system, shape) : (clusters.live.get(system) as Cluster);
          final = await cluster.step(pass, shape, rate, attempt, CONFIG.stepMs);
          ran.add(system);
          results.steps.push(final);
          log(stepLine(final));
          if (final.passed) break;
        } catch (error) {
          final = undefined;
          const message = `pass ${pass}, ${DATABASE_LABEL[database]}, ${shape.label}, ${SYSTEM_LABEL[system]} at ${rateText(rate)}/s (attempt ${attempt}): ${(error as Error).message}`;
          errors.push(message);
          log(`  ERROR ${message}`);
          await clusters.stop(system);
        }
      }
      if (final?.passed) best.set(system, final);
      else {
        active.delete(system);
        const cluster = clusters.live.get(system);
        if (cluster) cluster.dirty = true;
      }
    }
  }
  for (const system of ran) {
    const top = best.get(system);
    summary.sustained[system] = {
      rate: top?.rate ?? 0,
      // Still climbing: the ladder's top passed, or the time budget cut the ladder short.
      capped: active.has(system) && top !== undefined,
      p50Ms: top?.p50Ms,
      p99Ms: top?.p99Ms,
    };
  }
  const hw = summary.sustained.hubwire?.rate;
  const sio = summary.sustained.socketio?.rate;
  if (hw !== undefined && sio) summary.ratio = hw / sio;
  results.shapes.push(summary);
}

async function runInvoke(pass: number, database: DatabaseName, clusters: Clusters, system: SystemName): Promise<void> {
  const shape = SHAPES.invoke;
  if (budgetLeftSeconds() < 10 + CONFIG.invokeMs / 1000) {
    notes.push(
      `pass ${pass}, ${DATABASE_LABEL[database]}, ${SYSTEM_LABEL[system]} closed loop skipped: time budget (BENCH_DEADLINE_S).`,
    );
    return;
  }
  for (let attempt = 1; attempt <= 1 + CONFIG.retries; attempt++) {
    try {
      const cluster = attempt > 1 ? await clusters.start(system, shape) : await clusters.ready(system, shape);
      const result = await cluster.step(pass, shape, 0, attempt, CONFIG.invokeMs);
      results.steps.push(result);
      log(stepLine(result));
      return;
    } catch (error) {
      const message = `pass ${pass}, ${DATABASE_LABEL[database]}, ${SYSTEM_LABEL[system]} closed loop (attempt ${attempt}): ${(error as Error).message}`;
      errors.push(message);
      log(`  ERROR ${message}`);
      await clusters.stop(system);
    }
  }
}

export async function runDatabase(pass: number, database: DatabaseName): Promise<void> {
  const systems = systemsOf(database);
  if (systems.length === 0) return;
  // Each Hubwire system (metrics on, off) its own backplane: side by side, they must not hear each other.
  const hubwires = systems.filter((s) => SYSTEM_CODE[s] === 'hubwire');
  const backplanes = new Map(hubwires.map((s) => [s, freshBackplane(database, pass)] as const));
  log(
    `\nPass ${pass}/${CONFIG.passes}, ${DATABASE_LABEL[database]} (${systems.map((s) => SYSTEM_LABEL[s]).join(', ')}; ` +
      `Hubwire backplane ${[...backplanes.values()].map((b) => (b.url.startsWith('sqlite:') ? b.url : b.schema)).join(', ')})`,
  );
  const envs = new Map(systems.map((s) => [s, envFor(s, backplanes.get(s))] as const));
  const clusters = new Clusters(database, envs);
  const databaseEnd = budget.end;
  try {
    const ladders = CONFIG.shapes.filter((name) => SHAPES[name].kind !== 'invoke');
    const closedLoop = CONFIG.shapes.includes('invoke') && hubwires.length > 0;
    // The closed loops' fixed time (and their warm-ups) is set aside; the ladders share the rest.
    const reserved = closedLoop ? (CONFIG.invokeMs / 1000 + 10) * hubwires.length : 0;
    for (const [i, name] of ladders.entries()) {
      budget.end = shareOfTimeLeft(1, ladders.length - i, databaseEnd - reserved);
      const shape = SHAPES[name];
      log(` ${shape.label}:`);
      await runShape(pass, database, shape, clusters, systems);
    }
    if (closedLoop) {
      budget.end = databaseEnd;
      log(` ${SHAPES.invoke.label}:`);
      for (const system of hubwires) await runInvoke(pass, database, clusters, system);
    }
  } finally {
    budget.end = databaseEnd;
    await clusters.stopAll();
    // Their nodes are gone: drop them now rather than at the end.
    for (const { schema } of backplanes.values()) {
      await dropBackplane(database, schema).catch((error: unknown) =>
        log(`  could not drop ${schema} yet: ${(error as Error).message}`),
      );
    }
  }
}
