// Times child processes from a small, fresh Node process.
//
// Spawning from a process with a large heap is slow on Linux (fork copies its page
// tables: ~15 ms per spawn at 1.8 GiB RSS, measured), which would inflate every
// whole-process time taken from the benchmark's own process after it built a
// 1M-entry tree. So the benchmark hands its timed commands to this script.
//
// stdin: JSON { jobs: [{ name, cmd, args, cwd?, env?, inputFile?, pre?: [[cmd, args, cwd?]] }],
//               runs, warmup = 1, interleave = true }
//   pre: untimed commands run before every run of that job (e.g. a fresh `git init`).
// stdout: JSON { times: { name: [ms, …] }, stdout: { name: <stdout of the last run> } }
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

const spec = JSON.parse(readFileSync(0, 'utf8'))
const { jobs, runs, warmup = 1, interleave = true } = spec
const inputs = Object.fromEntries(jobs.filter((j) => j.inputFile).map((j) => [j.name, readFileSync(j.inputFile)]))

function once(job) {
  for (const [cmd, args, cwd] of job.pre ?? []) {
    const r = spawnSync(cmd, args, { cwd, env: job.env, stdio: 'ignore' })
    if (r.status !== 0) throw new Error(`${job.name}: setup ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`)
  }
  const input = inputs[job.name]
  const t0 = process.hrtime.bigint()
  const r = spawnSync(job.cmd, job.args, {
    cwd: job.cwd,
    env: job.env,
    input,
    maxBuffer: 1 << 30,
    stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  })
  const ms = Number(process.hrtime.bigint() - t0) / 1e6
  if (r.error) throw r.error
  if (r.status !== 0) throw new Error(`${job.name}: ${job.cmd} ${job.args.join(' ')} exited with ${r.status ?? r.signal}: ${String(r.stderr).slice(0, 2000)}`)
  return { ms, stdout: r.stdout.toString('utf8') }
}

const times = Object.fromEntries(jobs.map((j) => [j.name, []]))
const stdout = {}
try {
  for (let w = 0; w < warmup; w++) for (const j of jobs) once(j)
  const record = (j) => {
    const r = once(j)
    times[j.name].push(r.ms)
    stdout[j.name] = r.stdout
  }
  if (interleave) for (let r = 0; r < runs; r++) for (const j of jobs) record(j)
  else for (const j of jobs) for (let r = 0; r < runs; r++) record(j)
} catch (e) {
  process.stderr.write(String(e.stack ?? e) + '\n')
  process.exit(1)
}
process.stdout.write(JSON.stringify({ times, stdout }))
