import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { lineageDot, lineageMermaid, lineageText } from '../../src/repo/graph-format.js'
import type { LineageGraph, LineageNode, Taint } from '../../src/repo/lineage-graph.js'

// CIDs are opaque strings to the renderers; these read well in failures.
const MODEL = 'bafyreimodelmodelmodelmodelmodelmodelmodelmodelmodelmodel'
const TASK = 'bafyreitasktasktasktasktasktasktasktasktasktasktasktask'
const CAL = 'bafyreicalibrationcalibrationcalibrationcalibrationcal'
const SCAN = 'bafyreiscanscanscanscanscanscanscanscanscanscanscanscan'
const CONFIG = 'bafyreiconfigconfigconfigconfigconfigconfigconfigconfig'
const GONE = 'bafyreigonegonegonegonegonegonegonegonegonegonegonegone'
const EVAL = 'bafyreievalevalevalevalevalevalevalevalevalevalevaleval'

const cause = { root: CAL, reason: 'beam centre off by 2.6 px', invalidation: 'bafyreiinvalidation' }
const taint: Taint = { ...cause, causes: [cause], roots: [CAL] }
const node = (cid: string, path: string | undefined, depth: number, fields?: Record<string, unknown>, tainted?: Taint): LineageNode => ({
  cid,
  kind: 'record',
  paths: path ? [path] : [],
  depth,
  ...(fields ? { fields } : {}),
  ...(tainted ? { tainted } : {}),
})

/** Upstream of a model: the task that made it, which used a calibration (also reached through a scan) and a config. */
const upstream: LineageGraph = {
  start: MODEL,
  direction: 'up',
  truncated: false,
  nodes: [
    node(MODEL, 'model/best.json', 0, { type: 'model', name: 'braggnn-best' }, taint),
    node(TASK, 'task/hpo-t05.json', 1, { type: 'task', name: 'train trial 05', started_at: 1710424800 }, taint),
    node(CAL, 'calibration/cal-11a.json', 2, { type: 'calibration', name: 'cal-11a' }, taint),
    node(SCAN, 'scan/scan-0001.json', 2, { type: 'scan' }, taint),
    node(CONFIG, undefined, 2, { type: 'config', name: 'base' }),
    { cid: GONE, kind: 'missing', paths: [], depth: 2 },
  ],
  edges: [
    { from: MODEL, to: TASK, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
    { from: TASK, to: CAL, relation: 'used', field: 'used.0' },
    { from: TASK, to: SCAN, relation: 'used', field: 'used.1' },
    { from: TASK, to: CAL, relation: 'used', field: 'used.7' },
    { from: SCAN, to: CAL, relation: 'calibration', field: 'calibration' },
    { from: TASK, to: CONFIG, relation: 'config', field: 'config' },
    { from: TASK, to: GONE, relation: 'used', field: 'used.2' },
  ],
}

const hasDot = spawnSync('dot', ['-V']).status === 0

/** Render DOT to SVG with Graphviz; the exit status and output. */
function renderDot(dot: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('dot', ['-Tsvg'], { input: dot, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('lineageText', () => {
  it('prints an indented tree of what went into the start node, with taint markers', () => {
    const text = lineageText(upstream)
    expect(text).toBe(
      [
        'model/best.json [model braggnn-best] (TAINTED: beam centre off by 2.6 px (root cause calibration/cal-11a.json))',
        '└─ wasGeneratedBy ← task/hpo-t05.json [task train trial 05] (TAINTED: beam centre off by 2.6 px (root cause calibration/cal-11a.json))',
        '   ├─ used ← calibration/cal-11a.json [calibration cal-11a] (INVALIDATED: beam centre off by 2.6 px)',
        '   ├─ used ← scan/scan-0001.json [scan] (TAINTED: beam centre off by 2.6 px (root cause calibration/cal-11a.json))',
        '   │  └─ calibration ← calibration/cal-11a.json [calibration cal-11a] (INVALIDATED: beam centre off by 2.6 px) (see above)',
        '   ├─ config ← bafyreiconfigcon [config base]',
        '   └─ used ← bafyreigonegoneg [missing]',
        '',
      ].join('\n'),
    )
  })

  it('points downstream links the other way, and says when the walk was cut short', () => {
    const downstream: LineageGraph = {
      start: CAL,
      direction: 'down',
      truncated: true,
      nodes: [node(CAL, 'calibration/cal-11a.json', 0, { type: 'calibration' }, taint), node(TASK, 'task/hpo-t05.json', 1, { type: 'task' }, taint), node(MODEL, 'model/best.json', 2, { type: 'model' }, taint)],
      edges: [
        { from: TASK, to: CAL, relation: 'used', field: 'used.0' },
        { from: MODEL, to: TASK, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
      ],
    }
    const lines = lineageText(downstream).trimEnd().split('\n')
    expect(lines[0]).toBe('calibration/cal-11a.json [calibration] (INVALIDATED: beam centre off by 2.6 px)')
    expect(lines[1]).toMatch(/^└─ used → task\/hpo-t05\.json \[task\] \(TAINTED: /)
    expect(lines[2]).toMatch(/^   └─ wasGeneratedBy → model\/best\.json \[model\] \(TAINTED: /)
    expect(lines[3]).toMatch(/more lineage beyond/)
  })

  it('shows both directions from the start node, each branch continuing its own way', () => {
    const both: LineageGraph = {
      start: TASK,
      direction: 'both',
      truncated: false,
      nodes: [node(TASK, 'task/t.json', 0, { type: 'task' }), node(CAL, 'cal.json', 1), node(MODEL, 'model.json', 1), node(EVAL, 'eval.json', 2)],
      edges: [
        { from: TASK, to: CAL, relation: 'used', field: 'used' },
        { from: MODEL, to: TASK, relation: 'wasGeneratedBy', field: 'wasGeneratedBy' },
        { from: EVAL, to: MODEL, relation: 'used', field: 'used' },
      ],
    }
    expect(lineageText(both)).toBe(['task/t.json [task]', '├─ used ← cal.json', '└─ wasGeneratedBy → model.json', '   └─ used → eval.json', ''].join('\n'))
  })

  it('keeps every node on one line whatever its path holds', () => {
    const odd: LineageGraph = { start: MODEL, direction: 'up', truncated: false, nodes: [node(MODEL, 'a\nb\tc.json', 0)], edges: [] }
    expect(lineageText(odd)).toBe('a\\nb\\tc.json\n')
  })

  it('marks a node that is another version than the one at its path in the graph\'s revision', () => {
    const down: LineageGraph = {
      start: CAL,
      rev: 'main',
      direction: 'down',
      truncated: false,
      nodes: [node(CAL, 'calibration/cal-11a.json', 0, { type: 'calibration' }, taint), { ...node(SCAN, 'scan/scan-0001.json', 1, { type: 'scan' }, taint), otherVersion: true }],
      edges: [{ from: SCAN, to: CAL, relation: 'calibration', field: 'calibration' }],
    }
    expect(lineageText(down).split('\n')[1]).toBe(
      '└─ calibration → scan/scan-0001.json @ bafyreiscanscans (not the version in main) [scan] (TAINTED: beam centre off by 2.6 px (root cause calibration/cal-11a.json))',
    )
    expect(lineageDot(down)).toContain('label="scan/scan-0001.json\\n@ bafyreiscanscans, not the version in main\\nscan\\nTAINTED: beam centre off by 2.6 px"')
  })

  it('names a taint root outside the graph by its short CID', () => {
    const alone: LineageGraph = { start: MODEL, direction: 'up', truncated: false, nodes: [node(MODEL, 'model/best.json', 0, undefined, taint)], edges: [] }
    expect(lineageText(alone)).toBe('model/best.json (TAINTED: beam centre off by 2.6 px (root cause bafyreicalibrati))\n')
  })
})

describe('lineageDot', () => {
  it('draws nodes by PROV class, tainted ones in red with the reason, and an arrow per link', () => {
    const dot = lineageDot(upstream)
    expect(dot).toMatch(/^digraph lineage \{/)
    expect(dot).toContain(`"${TASK}" -> "${CAL}" [label="used", color="#c00000"];`)
    expect(dot).toContain(`"${TASK}" -> "${CONFIG}" [label="config"];`)
    // One arrow for the two fields (used.0, used.7) that link the same calibration.
    expect(dot.split(`"${TASK}" -> "${CAL}"`).length - 1).toBe(1)
    const line = (cid: string): string => dot.split('\n').find((l) => l.startsWith(`  "${cid}" [`))!
    expect(line(TASK)).toContain('shape=box')
    expect(line(CAL)).toContain('shape=ellipse')
    expect(line(CAL)).toContain('label="calibration/cal-11a.json\\ncalibration cal-11a\\nINVALIDATED: beam centre off by 2.6 px"')
    expect(line(CAL)).toContain('color="#c00000"')
    expect(line(CONFIG)).not.toContain('#c00000')
    expect(line(MODEL)).toContain('peripheries=2')
    expect(line(GONE)).toMatch(/style="[^"]*dashed/)
  })

  it('is parsed by Graphviz, labels with quotes, backslashes and newlines included', (ctx) => {
    if (!hasDot) ctx.skip('graphviz `dot` is not installed (apt-get install graphviz)')
    const odd: LineageGraph = {
      ...upstream,
      nodes: [...upstream.nodes.slice(0, -1), node(GONE, 'weird "path" \\ with\nnewline {x} <y> ;#.json', 2, { type: 'a"b', name: 'c\\"d' })],
    }
    const r = renderDot(lineageDot(odd))
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain('<svg')
    expect(r.stdout).toContain('TAINTED: beam centre off by 2.6 px')
    expect(r.stdout).toContain('weird &quot;path&quot; \\ with\\nnewline {x} &lt;y&gt; ;#.json')
    expect(renderDot(lineageDot({ ...upstream, truncated: true })).status).toBe(0)
  })
})

describe('lineageMermaid', () => {
  it('is a flowchart with one node per CID, labelled links, and tainted nodes in their own class', () => {
    const text = lineageMermaid(upstream)
    const lines = text.trimEnd().split('\n')
    expect(lines[0]).toBe('flowchart BT')
    // n0 model, n1 task, n2 calibration, n3 scan, n4 config, n5 missing.
    expect(lines).toContain('  n0("model/best.json<br/>model braggnn-best<br/>TAINTED: beam centre off by 2.6 px")')
    expect(lines).toContain('  n1["task/hpo-t05.json<br/>task train trial 05<br/>TAINTED: beam centre off by 2.6 px"]')
    expect(lines).toContain('  n4("bafyreiconfigcon<br/>config base")')
    expect(lines).toContain('  n0 -->|"wasGeneratedBy"| n1')
    expect(lines).toContain('  n1 -->|"used"| n2')
    expect(lines).toContain('  n3 -->|"calibration"| n2')
    expect(lines).toContain('  n1 -->|"config"| n4')
    expect(lines.filter((l) => l === '  n1 -->|"used"| n2')).toHaveLength(1)
    expect(lines).toContain('  class n0,n1,n2,n3 tainted')
    expect(lines).toContain('  class n4,n5 entity')
    expect(lines).toContain('  class n5 missing')
    expect(lines).toContain('  class n0 start')
    expect(lines.some((l) => l.startsWith('  classDef tainted '))).toBe(true)
  })

  it('escapes what Mermaid would read as syntax or HTML', () => {
    const odd: LineageGraph = { start: MODEL, direction: 'up', truncated: false, nodes: [node(MODEL, 'a "b" <i>c</i> #1 | d & e`', 0)], edges: [] }
    expect(lineageMermaid(odd)).toContain('  n0("a #34;b#34; #60;i#62;c#60;/i#62; #35;1 #124; d #38; e#96;")')
  })
})
