import { CID } from '../codec/cid.js'
import type { NodeKind, Taint } from './lineage-graph.js'

/**
 * W3C PROV-JSON (https://www.w3.org/submissions/prov-json/) from pedigree nodes and links.
 *
 * Identifiers: a node is `cid:<cid>` (prefix `cid` = `urn:cid:`); an agent named by a string
 * is `agent:<email, or name>` percent-encoded (prefix `agent` = `urn:pedigree:agent:`); pedigree's
 * own types and attributes live under `pedigree` = `urn:pedigree:`. Relations get blank-node
 * ids (`_:u1`, `_:g1`, …) numbered in input order, so the same input gives the same document.
 *
 * What a node is:
 * - a record whose `type` is one of ACTIVITY_TYPES (task, activity, run, job, step, workflow,
 *   invalidation), or that has no `type` but has `started_at` or `ended_at`, is an **activity**
 *   (its times become `prov:startTime` / `prov:endTime`); a record that names a type outside
 *   that list (`scan`, `calibration`, `model`…) stays an entity even with times, which stay attributes;
 * - a record whose `type` is one of AGENT_TYPES (agent, person, organization, software…) is an **agent**;
 * - every other record, every file, and every node whose block is absent is an **entity**.
 * A node known only as the target of a link is classed by what that link requires (the
 * target of `wasGeneratedBy` is an activity, of `used` an entity, …).
 *
 * What a link is (record `from` links to `to` under key `k`, by PROV's direction):
 * - `used` activity→entity: used(from, to); `wasGeneratedBy` entity→activity: wasGeneratedBy(from, to);
 *   `generated` activity→entity: wasGeneratedBy(to, from); `wasDerivedFrom` entity→entity;
 *   `wasRevisionOf` entity→entity: wasDerivedFrom with prov:type prov:Revision; `wasInformedBy`
 *   activity→activity; `wasInvalidatedBy` entity→activity; `agent` / `wasAssociatedWith`
 *   activity→agent; `agent` / `wasAttributedTo` entity→agent; `actedOnBehalfOf` agent→agent.
 * - any other key, or a standard key between nodes of the wrong classes, becomes the most
 *   specific PROV relation the two classes allow, with `pedigree:relation` = k: entity→entity
 *   wasDerivedFrom (`config`, `calibration`…: the record was made from it); activity→entity
 *   used with `prov:role` k (a task's `config`, `model`); activity→activity wasInformedBy;
 *   activity→agent wasAssociatedWith with `prov:role` k; entity→agent wasAttributedTo;
 *   agent→agent actedOnBehalfOf; anything else (entity→activity…) wasInfluencedBy.
 * - the full field path (`used.3`) is kept as `pedigree:field` when it differs from the key.
 *
 * Record fields become attributes `pedigree:<field>` (nested maps flattened as `a.b`, up to
 * three levels; arrays of scalars as JSON text; links and bytes left out, links being
 * relations). A string `agent` (also `wasAssociatedWith`, `wasAttributedTo`), either
 * `Name <email>` or a bare name, is an agent, associated with an activity or credited with an entity.
 */

export const PROV_PREFIXES = {
  cid: 'urn:cid:',
  pedigree: 'urn:pedigree:',
  agent: 'urn:pedigree:agent:',
} as const

/** `type` values that make a record an activity (compared case-insensitively). */
export const ACTIVITY_TYPES = ['task', 'activity', 'run', 'job', 'step', 'workflow', 'invalidation'] as const
/** `type` values that make a record an agent (compared case-insensitively). */
export const AGENT_TYPES = ['agent', 'person', 'organization', 'organisation', 'software', 'softwareagent'] as const

export type ProvClass = 'entity' | 'activity' | 'agent'

/** A typed literal or qualified name: `{"$": "prov:Revision", "type": "prov:QUALIFIED_NAME"}`. */
export interface ProvTyped {
  $: string | number
  type: string
}
export type ProvScalar = string | number | boolean | ProvTyped
export type ProvValue = ProvScalar | ProvScalar[]
export type ProvRecord = Record<string, ProvValue>

export const PROV_RELATIONS = [
  'used',
  'wasGeneratedBy',
  'wasDerivedFrom',
  'wasInformedBy',
  'wasAssociatedWith',
  'wasAttributedTo',
  'actedOnBehalfOf',
  'wasInvalidatedBy',
  'wasInfluencedBy',
] as const
export type ProvRelation = (typeof PROV_RELATIONS)[number]
export type ProvSection = 'entity' | 'activity' | 'agent' | ProvRelation

/** A PROV-JSON document. Empty sections are left out. */
export type ProvJson = { prefix: Record<string, string> } & Partial<Record<ProvSection, Record<string, ProvRecord>>>

/** A node: a LineageNode fits (its `depth` is ignored). */
export interface ProvNodeInput {
  cid: string
  kind: NodeKind
  /** Tree paths of the node. */
  paths?: string[]
  /** The record's fields (all of them, or only the conventional ones); links among them are skipped. */
  fields?: Record<string, unknown>
  /** Bytes of the file or of the record's encoding. */
  size?: number
  tainted?: Taint
}

/** A CID link: a LineageEdge fits. */
export interface ProvEdgeInput {
  from: string
  to: string
  /** The key naming the relation (first segment of the field path). */
  relation: string
  /** The full field path (`used.2`). */
  field?: string
}

/** Someone responsible for nodes: a commit author, typically. */
export interface ProvAgentInput {
  name: string
  email?: string
  /** prov:type of the agent, when known. */
  type?: 'Person' | 'SoftwareAgent' | 'Organization'
  /**
   * Nodes the agent is responsible for: wasAttributedTo for an entity, wasAssociatedWith
   * (with `prov:role` = role) for an activity.
   */
  responsibleFor?: { cid: string; role?: string; commit?: string; time?: number }[]
}

/** `cid` is a later version of `previous` at the same path. */
export interface ProvRevisionInput {
  cid: string
  previous: string
  path?: string
  /** The commit that made the change. */
  commit?: string
}

/** `target` was declared wrong by the invalidation record `record`. */
export interface ProvInvalidationInput {
  target: string
  /** CID of the invalidation record; it becomes the invalidating activity. */
  record?: string
  reason?: string
  /** ISO date-time, or seconds / milliseconds since the epoch. */
  time?: string | number
  /** Who invalidated it: `Name <email>` or a name. */
  by?: string
}

export interface ProvDocumentInput {
  nodes: ProvNodeInput[]
  edges: ProvEdgeInput[]
  agents?: ProvAgentInput[]
  revisions?: ProvRevisionInput[]
  invalidations?: ProvInvalidationInput[]
}

/** Attributes kept per node at most, so one huge record cannot swamp the document. */
const MAX_ATTRIBUTES = 256
/** Elements of an array of scalars written as an attribute at most. */
const MAX_ARRAY = 64

/** The range each standard link key requires, used to class a node known only as a link target. */
const RANGE: Record<string, ProvClass> = {
  used: 'entity',
  wasGeneratedBy: 'activity',
  generated: 'entity',
  wasDerivedFrom: 'entity',
  wasRevisionOf: 'entity',
  wasInformedBy: 'activity',
  wasInvalidatedBy: 'activity',
  agent: 'agent',
  wasAssociatedWith: 'agent',
  wasAttributedTo: 'agent',
  actedOnBehalfOf: 'agent',
}

/** Fields holding agent names rather than data. */
const AGENT_FIELDS = ['agent', 'wasAssociatedWith', 'wasAttributedTo'] as const

/**
 * The PROV class of a record, file or missing node (see the module comment).
 *
 * @example
 * provClassOf({ kind: 'record', fields: { type: 'task', started_at: 1710400000 } }) // 'activity'
 */
export function provClassOf(node: { kind: NodeKind; fields?: Record<string, unknown> }): ProvClass {
  if (node.kind !== 'record') return 'entity'
  const fields = node.fields ?? {}
  const type = typeof fields.type === 'string' ? fields.type.toLowerCase() : undefined
  if (type !== undefined) {
    if ((ACTIVITY_TYPES as readonly string[]).includes(type)) return 'activity'
    if ((AGENT_TYPES as readonly string[]).includes(type)) return 'agent'
    return 'entity'
  }
  return fields.started_at !== undefined || fields.ended_at !== undefined ? 'activity' : 'entity'
}

/** The PROV identifier of a node. */
export function provId(cid: string): string {
  return `cid:${cid}`
}

/** The PROV identifier of an agent named by text (`Name <email>` or a name). */
export function agentId(text: string): string {
  const { name, email } = parseAgent(text)
  return `agent:${encodeLocal(email ?? name)}`
}

/**
 * A date-time for `prov:startTime` and friends: ISO strings are kept as written, other
 * parseable strings normalised; numbers are seconds since the epoch (Flowcept, Python's
 * `time.time()`) below 1e11, milliseconds above. Undefined when it is not a time.
 */
export function xsdDateTime(value: unknown): string | undefined {
  if (typeof value === 'string') {
    if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.test(value) && !Number.isNaN(Date.parse(value))) return value
    const ms = Date.parse(value)
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString()
  }
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) {
    const ms = value < 1e11 ? value * 1000 : value
    const d = new Date(ms)
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
  }
  return undefined
}

/**
 * Build a PROV-JSON document from nodes and the links between them, plus the agents
 * responsible for them, revisions between versions of a path, and invalidations.
 * Every identifier a relation names is declared; the same input gives the same output.
 * A LineageGraph can be passed as it is.
 *
 * @example
 * const doc = provDocument(await repo.lineage('main:model/best.json', { direction: 'up' }))
 * writeFileSync('model.prov.json', JSON.stringify(doc, null, 2))
 */
export function provDocument({ nodes, edges, agents = [], revisions = [], invalidations = [] }: ProvDocumentInput): ProvJson {
  const b = new ProvBuilder()
  const byCid = new Map<string, ProvNodeInput>()
  for (const n of nodes) if (!byCid.has(n.cid)) byCid.set(n.cid, n)

  // Nodes that are missing or known only as link targets are classed by the first link that names them.
  const inferred = new Map<string, ProvClass>()
  for (const e of edges) {
    const known = byCid.get(e.to)
    if ((!known || known.kind === 'missing') && !inferred.has(e.to)) inferred.set(e.to, RANGE[e.relation] ?? 'entity')
  }
  const classOf = (cid: string): ProvClass => {
    const n = byCid.get(cid)
    if (n && n.kind !== 'missing') return provClassOf(n)
    return inferred.get(cid) ?? 'entity'
  }

  for (const n of byCid.values()) b.declare(classOf(n.cid), provId(n.cid), nodeAttributes(n, classOf(n.cid)))
  const ensure = (cid: string, cls: ProvClass = classOf(cid)): void => {
    if (!b.has(provId(cid))) b.declare(cls, provId(cid), {})
  }

  const linked = new Set<string>()
  for (const e of edges) {
    // The same target under `used.0` and `used.3` is one relation.
    const key = `${e.from} ${e.to} ${e.relation}`
    if (linked.has(key)) continue
    linked.add(key)
    ensure(e.from)
    ensure(e.to)
    const [section, attrs] = linkRelation(e.relation, provId(e.from), provId(e.to), classOf(e.from), classOf(e.to))
    if (e.field && e.field !== e.relation) attrs['pedigree:field'] = e.field
    b.relate(section, attrs)
  }

  for (const n of byCid.values()) {
    const cls = classOf(n.cid)
    for (const field of AGENT_FIELDS) {
      const value = n.fields?.[field]
      const names = typeof value === 'string' ? [value] : Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : []
      for (const text of names) {
        if (!text.trim()) continue
        const id = b.agent(text)
        const attrs: ProvRecord = field === 'agent' ? {} : { 'pedigree:relation': field }
        b.relate(...responsibility(cls, provId(n.cid), id, attrs))
      }
    }
  }

  for (const a of agents) {
    const id = b.agent(a.email ? `${a.name} <${a.email}>` : a.name, a.type)
    for (const r of a.responsibleFor ?? []) {
      ensure(r.cid)
      const attrs: ProvRecord = {}
      if (r.role) attrs[classOf(r.cid) === 'activity' ? 'prov:role' : 'pedigree:role'] = r.role
      if (r.commit) attrs['pedigree:commit'] = r.commit
      if (r.time !== undefined) {
        const t = xsdDateTime(r.time)
        if (t) attrs['pedigree:committed_at'] = t
      }
      b.relate(...responsibility(classOf(r.cid), provId(r.cid), id, attrs))
    }
  }

  for (const r of revisions) {
    // A revision is a derivation between entities; two versions of a task record are not.
    if (classOf(r.cid) !== 'entity' || classOf(r.previous) !== 'entity' || r.cid === r.previous) continue
    ensure(r.cid)
    ensure(r.previous)
    const attrs: ProvRecord = {
      'prov:generatedEntity': provId(r.cid),
      'prov:usedEntity': provId(r.previous),
      'prov:type': qname('prov:Revision'),
    }
    if (r.path) attrs['pedigree:path'] = r.path
    if (r.commit) attrs['pedigree:commit'] = r.commit
    b.relate('wasDerivedFrom', attrs)
  }

  invalidations.forEach((inv, i) => {
    const activity = inv.record ? provId(inv.record) : `pedigree:invalidation-${i + 1}`
    const time = xsdDateTime(inv.time)
    const attrs: ProvRecord = { 'prov:type': qname('pedigree:Invalidation') }
    if (inv.reason) {
      attrs['prov:label'] = `invalidation: ${inv.reason}`
      attrs['pedigree:reason'] = inv.reason
    }
    if (time) {
      attrs['prov:startTime'] = time
      attrs['prov:endTime'] = time
    }
    b.declare('activity', activity, attrs)
    ensure(inv.target)
    const reason: ProvRecord = inv.reason ? { 'pedigree:reason': inv.reason } : {}
    if (classOf(inv.target) === 'entity') {
      b.relate('wasInvalidatedBy', { 'prov:entity': provId(inv.target), 'prov:activity': activity, ...(time ? { 'prov:time': time } : {}), ...reason })
    } else {
      // PROV invalidates entities only; an invalidated task record still influenced nothing downstream validly.
      b.relate('wasInfluencedBy', { 'prov:influencee': provId(inv.target), 'prov:influencer': activity, 'pedigree:relation': 'wasInvalidatedBy', ...reason })
    }
    if (inv.by?.trim()) b.relate('wasAssociatedWith', { 'prov:activity': activity, 'prov:agent': b.agent(inv.by), 'prov:role': 'invalidator' })
  })

  return b.document()
}

// ---------------------------------------------------------------------------------------

class ProvBuilder {
  private readonly sections = new Map<ProvSection, Map<string, ProvRecord>>()
  private readonly classes = new Map<string, ProvClass>()
  private readonly relationKeys = new Set<string>()
  private readonly counters = new Map<ProvRelation, number>()

  has(id: string): boolean {
    return this.classes.has(id)
  }

  /** Declare an element once; a second declaration adds the attributes the first lacked. */
  declare(cls: ProvClass, id: string, attrs: ProvRecord): void {
    const known = this.classes.get(id)
    const section = known ?? cls
    if (!known) this.classes.set(id, cls)
    const map = this.section(section)
    const existing = map.get(id)
    if (!existing) map.set(id, { ...attrs })
    else for (const [k, v] of Object.entries(attrs)) if (!(k in existing)) existing[k] = v
  }

  agent(text: string, type?: ProvAgentInput['type']): string {
    const { name, email } = parseAgent(text)
    const id = agentId(text)
    const attrs: ProvRecord = { 'prov:label': name }
    if (email) attrs['pedigree:email'] = email
    if (type) attrs['prov:type'] = qname(`prov:${type}`)
    this.declare('agent', id, attrs)
    return id
  }

  /** Add a relation unless the same one (same section and attributes) is already there. */
  relate(section: ProvRelation, attrs: ProvRecord): void {
    const key = `${section} ${JSON.stringify(attrs)}`
    if (this.relationKeys.has(key)) return
    this.relationKeys.add(key)
    const n = (this.counters.get(section) ?? 0) + 1
    this.counters.set(section, n)
    this.section(section).set(`_:${RELATION_ID[section]}${n}`, attrs)
  }

  document(): ProvJson {
    const doc: ProvJson = { prefix: { ...PROV_PREFIXES } }
    for (const section of ['entity', 'activity', 'agent', ...PROV_RELATIONS] as const) {
      const map = this.sections.get(section)
      if (map && map.size > 0) doc[section] = Object.fromEntries(map)
    }
    return doc
  }

  private section(name: ProvSection): Map<string, ProvRecord> {
    let map = this.sections.get(name)
    if (!map) this.sections.set(name, (map = new Map()))
    return map
  }
}

const RELATION_ID: Record<ProvRelation, string> = {
  used: 'u',
  wasGeneratedBy: 'g',
  wasDerivedFrom: 'd',
  wasInformedBy: 'i',
  wasAssociatedWith: 'assoc',
  wasAttributedTo: 'attr',
  actedOnBehalfOf: 'del',
  wasInvalidatedBy: 'inv',
  wasInfluencedBy: 'infl',
}

/** The PROV relation for a link `from --key--> to` between nodes of the given classes. */
function linkRelation(key: string, from: string, to: string, fc: ProvClass, tc: ProvClass): [ProvRelation, ProvRecord] {
  const pair = `${fc}>${tc}`
  switch (key) {
    case 'used':
      if (pair === 'activity>entity') return ['used', { 'prov:activity': from, 'prov:entity': to }]
      break
    case 'wasGeneratedBy':
      if (pair === 'entity>activity') return ['wasGeneratedBy', { 'prov:entity': from, 'prov:activity': to }]
      break
    case 'generated':
      if (pair === 'activity>entity') return ['wasGeneratedBy', { 'prov:entity': to, 'prov:activity': from }]
      break
    case 'wasDerivedFrom':
      if (pair === 'entity>entity') return ['wasDerivedFrom', { 'prov:generatedEntity': from, 'prov:usedEntity': to }]
      break
    case 'wasRevisionOf':
      if (pair === 'entity>entity') return ['wasDerivedFrom', { 'prov:generatedEntity': from, 'prov:usedEntity': to, 'prov:type': qname('prov:Revision') }]
      break
    case 'wasInformedBy':
      if (pair === 'activity>activity') return ['wasInformedBy', { 'prov:informed': from, 'prov:informant': to }]
      break
    case 'wasInvalidatedBy':
      if (pair === 'entity>activity') return ['wasInvalidatedBy', { 'prov:entity': from, 'prov:activity': to }]
      break
    case 'agent':
    case 'wasAssociatedWith':
    case 'wasAttributedTo':
      if (pair === 'activity>agent' && key !== 'wasAttributedTo') return ['wasAssociatedWith', { 'prov:activity': from, 'prov:agent': to }]
      if (pair === 'entity>agent' && key !== 'wasAssociatedWith') return ['wasAttributedTo', { 'prov:entity': from, 'prov:agent': to }]
      break
    case 'actedOnBehalfOf':
      if (pair === 'agent>agent') return ['actedOnBehalfOf', { 'prov:delegate': from, 'prov:responsible': to }]
      break
  }
  const relation = { 'pedigree:relation': key }
  switch (pair) {
    case 'entity>entity':
      return ['wasDerivedFrom', { 'prov:generatedEntity': from, 'prov:usedEntity': to, ...relation }]
    case 'activity>entity':
      return ['used', { 'prov:activity': from, 'prov:entity': to, 'prov:role': key, ...relation }]
    case 'activity>activity':
      return ['wasInformedBy', { 'prov:informed': from, 'prov:informant': to, ...relation }]
    case 'activity>agent':
      return ['wasAssociatedWith', { 'prov:activity': from, 'prov:agent': to, 'prov:role': key, ...relation }]
    case 'entity>agent':
      return ['wasAttributedTo', { 'prov:entity': from, 'prov:agent': to, ...relation }]
    case 'agent>agent':
      return ['actedOnBehalfOf', { 'prov:delegate': from, 'prov:responsible': to, ...relation }]
    default:
      return ['wasInfluencedBy', { 'prov:influencee': from, 'prov:influencer': to, ...relation }]
  }
}

/** Who answers for a node: attribution for an entity, association for an activity, delegation for an agent. */
function responsibility(cls: ProvClass, node: string, agent: string, extra: ProvRecord): [ProvRelation, ProvRecord] {
  if (cls === 'activity') return ['wasAssociatedWith', { 'prov:activity': node, 'prov:agent': agent, ...extra }]
  if (cls === 'agent') return ['actedOnBehalfOf', { 'prov:delegate': node, 'prov:responsible': agent, ...extra }]
  return ['wasAttributedTo', { 'prov:entity': node, 'prov:agent': agent, ...extra }]
}

function nodeAttributes(node: ProvNodeInput, cls: ProvClass): ProvRecord {
  const attrs: ProvRecord = {}
  const fields = node.fields ?? {}
  attrs['prov:type'] = qname(node.kind === 'file' ? 'pedigree:File' : node.kind === 'missing' ? 'pedigree:Missing' : 'pedigree:Record')
  const paths = node.paths ?? []
  const label = typeof fields.name === 'string' && fields.name ? fields.name : paths[0]
  if (label) attrs['prov:label'] = label
  if (paths.length === 1) attrs['pedigree:path'] = paths[0]!
  else if (paths.length > 1) attrs['pedigree:path'] = [...paths]
  if (node.size !== undefined) attrs['pedigree:size'] = node.size
  const skip = new Set<string>(AGENT_FIELDS.filter((f) => typeof fields[f] === 'string' || Array.isArray(fields[f])))
  if (cls === 'activity') {
    const start = xsdDateTime(fields.started_at)
    const end = xsdDateTime(fields.ended_at)
    if (start) {
      attrs['prov:startTime'] = start
      skip.add('started_at')
    }
    if (end) {
      attrs['prov:endTime'] = end
      skip.add('ended_at')
    }
  }
  let count = Object.keys(attrs).length
  const put = (key: string, value: ProvValue): void => {
    if (count >= MAX_ATTRIBUTES) return
    attrs[`pedigree:${encodeLocal(key)}`] = value
    count++
  }
  const flatten = (prefix: string, value: unknown, depth: number): void => {
    const scalar = scalarValue(value)
    if (scalar !== undefined) return put(prefix, scalar)
    if (value === null || typeof value !== 'object' || isLinkOrBytes(value)) return
    if (Array.isArray(value)) {
      if (value.length > 0 && value.length <= MAX_ARRAY && value.every((v) => scalarValue(v) !== undefined && typeof v !== 'bigint')) put(prefix, JSON.stringify(value))
      return
    }
    if (depth >= 3) return
    for (const k of Object.keys(value).sort()) flatten(`${prefix}.${k}`, (value as Record<string, unknown>)[k], depth + 1)
  }
  for (const k of Object.keys(fields).sort()) if (!skip.has(k)) flatten(k, fields[k], 1)
  if (node.tainted) {
    attrs['pedigree:tainted'] = true
    attrs['pedigree:taintReason'] = node.tainted.reason
    attrs['pedigree:taintRoot'] = qname(provId(node.tainted.root))
    attrs['pedigree:taintInvalidation'] = qname(provId(node.tainted.invalidation))
    // Every cause, the primary one first (a node may derive from several invalidated nodes).
    const causes = node.tainted.causes ?? [node.tainted]
    attrs['pedigree:taintRoots'] = causes.map((c) => qname(provId(c.root)))
    attrs['pedigree:taintReasons'] = causes.map((c) => c.reason)
  }
  return attrs
}

function scalarValue(value: unknown): ProvScalar | undefined {
  if (typeof value === 'string' || typeof value === 'boolean') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (typeof value === 'bigint') return { $: value.toString(), type: 'xsd:integer' }
  return undefined
}

function isLinkOrBytes(value: object): boolean {
  if (CID.asCID(value) || value instanceof Uint8Array) return true
  // A DAG-JSON link or bytes, when fields come from JSON rather than decoded dag-cbor.
  const keys = Object.keys(value)
  return keys.length === 1 && keys[0] === '/'
}

function qname(name: string): ProvTyped {
  return { $: name, type: 'prov:QUALIFIED_NAME' }
}

function parseAgent(text: string): { name: string; email?: string } {
  const m = /^\s*(.*?)\s*<([^<>]+)>\s*$/.exec(text)
  if (m) return { name: m[1] || m[2]!, email: m[2]! }
  return { name: text.trim() }
}

/** A local name safe in PROV-N and PROV-JSON: unreserved characters kept, the rest %-encoded. */
function encodeLocal(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}
