// Chaos signaling, 50 seeds per scenario and stack: every pair talks through a signaler that
// duplicates, reorders, delays and drops what it delivers (test/support/chaos.ts, seeded, so a
// run can be replayed: CHAOS_SEEDS=7,31 runs only those seeds). Each pair must open, carry a
// message both ways, report no `error`, and still be connected once every delayed message has
// landed; rebuilds are counted and bounded per scenario. Pairs run 10 at a time (25 where
// signaling is slow and the CPU idles; CHAOS_CONCURRENCY overrides), each in its own room. More
// at once is not free: 25 werift pairs starting together open in ~1 s instead of ~0.2 s.
import { describe, expect, test } from 'vitest'
import { BroadcastChannelSignaler, type PolitelyError } from '../../src/index'
import { type ChaosOptions, chaos } from '../support/chaos'
import { opened, roundTrip, STACKS, uniqueRoom, useStack } from '../support/stacks'

const SEEDS = process.env.CHAOS_SEEDS
  ? process.env.CHAOS_SEEDS.split(',').map(Number)
  : Array.from({ length: 50 }, (_, i) => i + 1)
/** A pair that has not opened and round-tripped by then is a failure (rebuilds back off up to 16 × 2.5 s). */
const PAIR_CAP_MS = 60_000

interface Scenario {
  name: string
  chaos: Omit<ChaosOptions, 'seed'>
  /** Pairs at a time. */
  concurrency: number
  /** Most runs (of `SEEDS.length`) allowed to see at least one rebuild. */
  maxRunsWithRebuild: (runs: number) => number
}

const SCENARIOS: Scenario[] = [
  // A duplicate is applied once; nothing is lost: no reason to rebuild, ever.
  { name: 'duplicates', chaos: { duplicate: 0.5 }, concurrency: 10, maxRunsWithRebuild: () => 0 },
  // Small delays only reorder (the stall timeout is 2.5 s): no reason to rebuild, ever.
  { name: 'reordering', chaos: { maxDelay: 100 }, concurrency: 10, maxRunsWithRebuild: () => 0 },
  // A lost hello is repeated, a lost offer or answer goes again: none needs a rebuild. Candidates
  // are not repeated, but a side that lost all of the other's still learns a peer-reflexive one
  // from its checks. Same bar as slow signaling: no rebuild in ≥ 95 % of runs.
  { name: '20% drop', chaos: { drop: 0.2 }, concurrency: 10, maxRunsWithRebuild: (runs) => Math.floor(runs * 0.05) },
  // Slow signaling is not a stalled connection: the bar is no rebuild in ≥ 95 % of runs.
  { name: '0–3000 ms delay', chaos: { maxDelay: 3000 }, concurrency: 25, maxRunsWithRebuild: (runs) => Math.floor(runs * 0.05) },
  // Everything at once: a lost message's repeat may itself be lost and land 3 s late, so some
  // slack over the two above: no rebuild in ≥ 90 % of runs.
  {
    name: 'all combined',
    chaos: { duplicate: 0.3, drop: 0.2, maxDelay: 3000 },
    concurrency: 25,
    maxRunsWithRebuild: (runs) => Math.floor(runs * 0.1),
  },
]

interface Run {
  seed: number
  /** Start → open on both sides (ms), if it opened. */
  openMs?: number
  /** `peer id:reason` of every rebuild on either side. */
  rebuilds: string[]
  reasons: string[]
  errors: string[]
  failure?: string
}

/** Rejects with `what` if `promise` is not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what()} within ${ms / 1000} s`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** Runs `task` over `items`, `limit` at a time. */
async function pool<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = []
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return results
}

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]

describe.each(STACKS)('chaos signaling, 50 seeds per stack: $name', ({ name: stackName, make }) => {
  const { peer } = useStack(make)

  /** One pair under chaos with `seed`: each side's signaler gets its own seeded stream. */
  async function runPair(scenario: Scenario, seed: number): Promise<Run> {
    const room = uniqueRoom()
    const run: Run = { seed, rebuilds: [], reasons: [], errors: [] }
    const side = (n: number) =>
      peer(room, {
        // Fixed ids, so a seed replays with the same roles: the lower id is polite (odd seeds: a).
        id: `${seed}-${(n + seed) % 2 ? 'a' : 'b'}`,
        signaler: chaos(new BroadcastChannelSignaler({ room }), { seed: seed * 100 + n, ...scenario.chaos }),
      })
    const a = side(0)
    const b = side(1)
    for (const p of [a, b])
      p.on('rebuild', ({ reason }) => {
        run.rebuilds.push(`${p.id}:${reason}`)
        run.reasons.push(reason)
      })
    const started = performance.now()
    let step = 'open'
    try {
      await within(
        (async () => {
          await Promise.all([a.start(), b.start(), opened(a), opened(b)])
          run.openMs = performance.now() - started
          step = 'round trip a → b'
          await roundTrip(a, b, `seed ${seed}`)
          step = 'round trip b → a'
          await roundTrip(b, a, `seed ${seed} back`)
        })(),
        PAIR_CAP_MS,
        () => `${step} (states ${a.state}/${b.state}, rebuilds ${run.rebuilds.join(' ') || 'none'})`,
      )
      // Every delayed message lands now: a late one must neither break the pair nor raise an error.
      await new Promise((resolve) => setTimeout(resolve, (scenario.chaos.maxDelay ?? 0) + 500))
      if (a.state !== 'connected' || b.state !== 'connected')
        run.failure = `not connected after the late messages: ${a.state}/${b.state}`
    } catch (error) {
      run.failure = (error as Error).message
    } finally {
      run.errors = [...a.errors, ...b.errors].map((error) => `${(error as PolitelyError).code}: ${error.message}`)
      a.close()
      b.close()
    }
    return run
  }

  for (const scenario of SCENARIOS) {
    const concurrency = Number(process.env.CHAOS_CONCURRENCY) || scenario.concurrency
    test(
      scenario.name,
      async () => {
        const began = performance.now()
        const runs = await pool(SEEDS, concurrency, (seed) => runPair(scenario, seed))
        const times = runs.flatMap((r) => (r.openMs === undefined ? [] : [r.openMs])).sort((x, y) => x - y)
        const withRebuild = runs.filter((r) => r.rebuilds.length > 0)
        const reasons: Record<string, number> = {}
        for (const r of runs) for (const reason of r.reasons) reasons[reason] = (reasons[reason] ?? 0) + 1
        const ms = (value: number | undefined) => (value === undefined ? '-' : `${Math.round(value)}`)
        console.log(
          `chaos ${stackName} / ${scenario.name}: ${runs.length} runs in ${((performance.now() - began) / 1000).toFixed(1)} s; ` +
            `open median ${ms(quantile(times, 0.5))} p90 ${ms(quantile(times, 0.9))} max ${ms(times.at(-1))} ms; ` +
            `rebuilds ${runs.reduce((sum, r) => sum + r.rebuilds.length, 0)} ${JSON.stringify(reasons)}, ` +
            `runs with ≥ 1: ${withRebuild.length} (seeds ${withRebuild.map((r) => r.seed).join(',') || '-'}); ` +
            `failed ${runs.filter((r) => r.failure).length}, with errors ${runs.filter((r) => r.errors.length).length}`,
        )
        // Soft: every bar is reported, not only the first that fails.
        expect.soft(runs.filter((r) => r.failure).map((r) => `seed ${r.seed}: ${r.failure}`)).toEqual([])
        expect.soft(runs.filter((r) => r.errors.length).map((r) => `seed ${r.seed}: ${r.errors.join('; ')}`)).toEqual([])
        expect
          .soft(
            withRebuild.length,
            `runs with a rebuild: ${withRebuild.map((r) => `${r.seed} [${r.rebuilds.join(' ')}]`).join(', ')}`,
          )
          .toBeLessThanOrEqual(scenario.maxRunsWithRebuild(runs.length))
      },
      // 50 seeds, 10 or 25 at a time, each capped at 60 s (+ the late-message wait): never reached when pairs open.
      Math.ceil(SEEDS.length / concurrency) * (PAIR_CAP_MS + 4000) + 30_000,
    )
  }
})
