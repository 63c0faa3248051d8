import type { LineageEdge, LineageGraph, LineageNode } from './lineage-graph.js'
import { provClassOf, type ProvClass } from './prov.js'
import { taintText } from './taint-text.js'

/**
 * Renderers of a LineageGraph: an indented text tree, Graphviz DOT and a Mermaid flowchart.
 * Pure functions of the graph: no store access, the same graph gives the same text.
 *
 * Pictures follow the PROV drawing conventions (entities yellow ellipses, activities blue
 * boxes, agents orange houses; an arrow points from a record to what it links to, so
 * arrows point into the past). Tainted nodes are red, with every cause's reason in the label.
 */

/** Characters of a CID shown where a node has no path. */
const SHORT = 16
/** Longest label line in pictures; longer ones are cut with an ellipsis. */
const MAX_LABEL = 60

interface Step {
  edge: LineageEdge
  /** The node this line is about. */
  cid: string
  up: boolean
}

/**
 * The graph as an indented tree from the start node, one line per link:
 * `relation ← path [type name]` for what went into a node (upstream),
 * `relation → path [type name]` for what used it (downstream), with
 * `(INVALIDATED: reason)` on invalidated nodes and `(TAINTED: reason (root cause path))` on
 * nodes derived from one, followed by `; also: …` for each further cause. A node that is not
 * the version at its path in the graph's `rev` shows its short CID and says so. A node
 * reached a second time is printed once more, marked `(see above)`, and not expanded again.
 *
 * @example
 * process.stdout.write(lineageText(await repo.lineage('main:model/best.json')))
 */
export function lineageText(graph: LineageGraph): string {
  const nodes = nodeMap(graph)
  const upOf = new Map<string, LineageEdge[]>()
  const downOf = new Map<string, LineageEdge[]>()
  for (const e of uniqueEdges(graph.edges)) {
    push(upOf, e.from, e)
    push(downOf, e.to, e)
  }
  const childrenOf = (cid: string, dirs: { up: boolean; down: boolean }): Step[] => [
    ...(dirs.up ? (upOf.get(cid) ?? []).map((edge) => ({ edge, cid: edge.to, up: true })) : []),
    ...(dirs.down ? (downOf.get(cid) ?? []).map((edge) => ({ edge, cid: edge.from, up: false })) : []),
  ]

  const label = (cid: string): string => textLabel(cid, nodes.get(cid), graph.rev, (root) => nodes.get(root)?.paths[0])
  const lines = [label(graph.start)]
  const seen = new Set<string>([graph.start])
  const rootDirs = { up: graph.direction !== 'down', down: graph.direction !== 'up' }
  // Explicit stack: lineage can be deep, recursion is not needed to draw it.
  type Frame = { steps: Step[]; index: number; indent: string }
  const stack: Frame[] = [{ steps: childrenOf(graph.start, rootDirs), index: 0, indent: '' }]
  while (stack.length > 0) {
    const frame = stack[stack.length - 1]!
    if (frame.index >= frame.steps.length) {
      stack.pop()
      continue
    }
    const step = frame.steps[frame.index++]!
    const last = frame.index === frame.steps.length
    const again = seen.has(step.cid)
    seen.add(step.cid)
    const arrow = step.up ? '←' : '→'
    lines.push(`${frame.indent}${last ? '└─ ' : '├─ '}${clean(step.edge.relation)} ${arrow} ${label(step.cid)}${again ? ' (see above)' : ''}`)
    if (again) continue
    const children = childrenOf(step.cid, { up: step.up, down: !step.up })
    if (children.length > 0) stack.push({ steps: children, index: 0, indent: frame.indent + (last ? '   ' : '│  ') })
  }
  if (graph.truncated) lines.push('… more lineage beyond the depth or node limit')
  return lines.join('\n') + '\n'
}

/**
 * The graph in Graphviz DOT, for `dot -Tsvg`: one node per CID (labelled with its path and
 * `type name`), one arrow per link labelled with its relation. Tainted nodes are red and
 * say why; the start node has a double border; missing nodes are dashed.
 *
 * @example
 * writeFileSync('lineage.dot', lineageDot(graph)) // then: dot -Tsvg lineage.dot > lineage.svg
 */
export function lineageDot(graph: LineageGraph): string {
  const nodes = nodeMap(graph)
  const out = [
    'digraph lineage {',
    '  graph [rankdir=BT, fontname="Helvetica"];',
    '  node [fontname="Helvetica", fontsize=10];',
    '  edge [fontname="Helvetica", fontsize=9];',
  ]
  for (const cid of allCids(graph)) {
    const node = nodes.get(cid)
    const cls = classOf(node)
    const attrs: string[] = [`label=${dotString(pictureLabel(cid, node, graph.rev).join('\n'))}`, ...DOT_STYLE[cls]]
    const style = ['filled']
    if (cls === 'activity' || cls === 'file') style.push('rounded')
    if (!node || node.kind === 'missing') style.push('dashed')
    attrs.push(`style=${dotString(style.join(','))}`)
    if (node?.tainted) attrs.push('color="#c00000"', 'fillcolor="#ffc9c9"', 'penwidth=2.5', 'fontcolor="#800000"')
    if (cid === graph.start) attrs.push('peripheries=2')
    out.push(`  ${dotString(cid)} [${attrs.join(', ')}];`)
  }
  for (const e of uniqueEdges(graph.edges)) {
    const tainted = nodes.get(e.from)?.tainted && nodes.get(e.to)?.tainted
    out.push(`  ${dotString(e.from)} -> ${dotString(e.to)} [label=${dotString(e.relation)}${tainted ? ', color="#c00000"' : ''}];`)
  }
  if (graph.truncated) out.push(`  truncated [label="… more beyond the depth or node limit", shape=plaintext];`)
  out.push('}')
  return out.join('\n') + '\n'
}

/**
 * The graph as a Mermaid `flowchart` (GitHub, GitLab and most wikis render it in Markdown).
 * Node ids are `n0`, `n1`, … in graph order; labels are quoted with Mermaid's entity codes.
 *
 * @example
 * console.log('```mermaid\n' + lineageMermaid(graph) + '```')
 */
export function lineageMermaid(graph: LineageGraph): string {
  const nodes = nodeMap(graph)
  const ids = new Map<string, string>()
  const out = ['flowchart BT']
  const byClass = new Map<string, string[]>()
  for (const cid of allCids(graph)) {
    const id = `n${ids.size}`
    ids.set(cid, id)
    const node = nodes.get(cid)
    const cls = classOf(node)
    const [open, close] = MERMAID_SHAPE[cls]
    out.push(`  ${id}${open}"${pictureLabel(cid, node, graph.rev).map(mermaidText).join('<br/>')}"${close}`)
    const classes = [node?.tainted ? 'tainted' : cls]
    if (!node || node.kind === 'missing') classes.push('missing')
    if (cid === graph.start) classes.push('start')
    for (const c of classes) push(byClass, c, id)
  }
  for (const e of uniqueEdges(graph.edges)) out.push(`  ${ids.get(e.from)} -->|"${mermaidText(e.relation)}"| ${ids.get(e.to)}`)
  for (const [name, style] of Object.entries(MERMAID_CLASSES)) out.push(`  classDef ${name} ${style}`)
  for (const [name, members] of byClass) out.push(`  class ${members.join(',')} ${name}`)
  return out.join('\n') + '\n'
}

// ---------------------------------------------------------------------------------------

type DrawClass = ProvClass | 'file'

const DOT_STYLE: Record<DrawClass, string[]> = {
  entity: ['shape=ellipse', 'fillcolor="#fffc87"', 'color="#808080"'],
  file: ['shape=note', 'fillcolor="#fffc87"', 'color="#808080"'],
  activity: ['shape=box', 'fillcolor="#9fb1fc"', 'color="#0000ff"'],
  agent: ['shape=house', 'fillcolor="#fed37f"', 'color="#808080"'],
}

const MERMAID_SHAPE: Record<DrawClass, [string, string]> = {
  entity: ['(', ')'],
  file: ['[(', ')]'],
  activity: ['[', ']'],
  agent: ['[/', '\\]'],
}

const MERMAID_CLASSES: Record<string, string> = {
  entity: 'fill:#fffc87,stroke:#808080',
  file: 'fill:#fffc87,stroke:#808080',
  activity: 'fill:#9fb1fc,stroke:#0000ff',
  agent: 'fill:#fed37f,stroke:#808080',
  tainted: 'fill:#ffc9c9,stroke:#c00000,stroke-width:3px,color:#800000',
  missing: 'stroke-dasharray:5 5',
  start: 'stroke-width:4px',
}

function classOf(node: LineageNode | undefined): DrawClass {
  if (!node) return 'entity'
  if (node.kind === 'file') return 'file'
  return provClassOf(node)
}

function nodeMap(graph: LineageGraph): Map<string, LineageNode> {
  return new Map(graph.nodes.map((n) => [n.cid, n]))
}

/** Every CID to draw: the nodes in graph order, then link ends the graph did not describe. */
function allCids(graph: LineageGraph): string[] {
  const out = new Set<string>([graph.start, ...graph.nodes.map((n) => n.cid)])
  for (const e of graph.edges) {
    out.add(e.from)
    out.add(e.to)
  }
  return [...out]
}

/** One edge per (from, to, relation): `used.0` and `used.3` to the same node draw once. */
function uniqueEdges(edges: LineageEdge[]): LineageEdge[] {
  const seen = new Set<string>()
  return edges.filter((e) => {
    const key = `${e.from} ${e.to} ${e.relation}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key)
  if (list) list.push(value)
  else map.set(key, [value])
}

/**
 * `path-or-short-cid [type name] (INVALIDATED|TAINTED: …)`; an other version of a path adds
 * `@ short-cid (not the version in <rev>)`; roots are named by path when the graph has one.
 */
function textLabel(cid: string, node: LineageNode | undefined, rev: string | undefined, pathOf: (cid: string) => string | undefined): string {
  let text = clean(node?.paths[0] ?? cid.slice(0, SHORT))
  if (node?.otherVersion) text += ` @ ${cid.slice(0, SHORT)} (not the version in ${clean(rev ?? '')})`
  const what = describe(node)
  if (what) text += ` [${clean(what)}]`
  if (node?.tainted) text += ` (${clean(taintText(cid, node.tainted, { nameOf: (root) => pathOf(root) ?? root.slice(0, SHORT) }))})`
  return text
}

/** Lines of a node's label in pictures: path or short CID, `type name`, one line per taint cause. */
function pictureLabel(cid: string, node: LineageNode | undefined, rev: string | undefined): string[] {
  const lines = [cut(node?.paths[0] ?? cid.slice(0, SHORT))]
  if (node?.otherVersion) lines.push(cut(`@ ${cid.slice(0, SHORT)}, not the version in ${rev ?? ''}`))
  const what = describe(node)
  if (what) lines.push(cut(what))
  for (const [i, c] of (node?.tainted?.causes ?? []).entries()) {
    lines.push(cut(`${i > 0 ? 'also' : c.root === cid ? 'INVALIDATED' : 'TAINTED'}: ${c.reason}`))
  }
  return lines
}

/** `type name` of a record, `file` for files, `missing` for absent blocks; empty when nothing is known. */
function describe(node: LineageNode | undefined): string {
  if (!node) return ''
  if (node.kind === 'file') return 'file'
  if (node.kind === 'missing') return 'missing'
  const parts = [node.fields?.type, node.fields?.name].filter((v) => v !== undefined && v !== null && v !== '').map(String)
  return parts.join(' ')
}

/** One line of plain text: control characters shown as escapes, never as line breaks. */
function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]/g, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`))
}

function cut(text: string): string {
  const one = clean(text)
  return one.length > MAX_LABEL ? `${one.slice(0, MAX_LABEL - 1)}…` : one
}

/** A DOT double-quoted string; `\n` in the text becomes a centred line break. */
function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`
}

/** Text inside a quoted Mermaid label: entity codes for what Mermaid or HTML would read. */
function mermaidText(text: string): string {
  return clean(text).replace(/[#"&<>|`]/g, (c) => `#${c.charCodeAt(0)};`)
}
