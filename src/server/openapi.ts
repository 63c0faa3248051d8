/**
 * The OpenAPI 3 description of every route of `pedigree serve`, served at GET /openapi.json.
 * docs/openapi.json is this document written out (a test checks that they are the same, and
 * that every route the server registers is described here).
 */

const json = (schema: unknown, description = 'OK'): unknown => ({ description, content: { 'application/json': { schema } } })
const car = (description: string): unknown => ({ description, content: { 'application/vnd.ipld.car': { schema: { type: 'string', format: 'binary' } } } })
const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` })
const errors = (...statuses: number[]): Record<string, unknown> =>
  Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/E${s}` }]))
const query = (name: string, description: string, schema: unknown = { type: 'string' }, required = false): unknown => ({ name, in: 'query', required, description, schema })
const jsonBody = (schema: unknown): unknown => ({ required: true, content: { 'application/json': { schema } } })
const cidList = { type: 'array', items: ref('Cid') }
/** A list of CIDs: JSON, or binary (each CID's binary form, one after another; 36 bytes each for a store's CIDs). */
const cidsBody = {
  required: true,
  content: {
    'application/json': { schema: { type: 'object', required: ['cids'], properties: { cids: cidList } } },
    'application/vnd.pedigree.cids': { schema: { type: 'string', format: 'binary' } },
  },
}

const READ = [{}, { bearer: [] }]
const WRITE = [{ bearer: [] }]

export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: '3.0.3',
    info: {
      title: 'pedigree serve',
      version: '1',
      description:
        'The HTTP API of a pedigree store: the sync protocol (one request per step of push, fetch, pull and clone; blocks as CARv1 streams) and a read API returning JSON. ' +
        'Reads need no token unless the server runs with --require-token-for-read; writes need a bearer token with write scope unless it runs with --allow-anonymous-write. ' +
        'Every error is {"error": {"code", "message", "data"}}.',
    },
    servers: [{ url: 'http://127.0.0.1:8080' }],
    security: READ,
    tags: [
      { name: 'sync', description: 'The sync protocol (what `pedigree push/fetch/pull/clone` speak).' },
      { name: 'read', description: 'Read API: refs, log, show, ls, diff, lineage as JSON.' },
    ],
    paths: {
      '/openapi.json': { get: { summary: 'This document', security: [{}], responses: { 200: json({ type: 'object' }) } } },
      '/v1/info': {
        get: {
          tags: ['read'],
          summary: 'What this server is and what it allows',
          security: [{}],
          responses: {
            200: json({
              type: 'object',
              properties: {
                server: { type: 'string', enum: ['pedigree'] },
                protocol: { type: 'integer' },
                auth: { type: 'object', properties: { anonymousRead: { type: 'boolean' }, anonymousWrite: { type: 'boolean' } } },
                limits: { type: 'object', properties: { jsonBody: { type: 'integer' }, carBody: { type: 'integer' } } },
              },
            }),
          },
        },
      },
      '/v1/refs': {
        get: {
          tags: ['sync', 'read'],
          summary: 'Every ref and the commit it points at, sorted by name (Transport.listRefs)',
          parameters: [query('prefix', 'only refs whose name starts with this')],
          responses: { 200: json({ type: 'object', required: ['refs'], properties: { refs: { type: 'array', items: ref('Ref') } } }), ...errors(400, 401) },
        },
      },
      '/v1/sync/has': {
        post: {
          tags: ['sync'],
          summary: 'Which of these blocks the server stores, in order (Transport.hasMany)',
          description: 'Asked in JSON, answered in JSON. Asked with a binary CID list (what the pedigree client sends), answered with one byte per CID: 1 if the server has it, else 0.',
          requestBody: cidsBody,
          responses: {
            200: {
              description: 'one answer per CID, in order',
              content: {
                'application/json': { schema: { type: 'object', properties: { have: { type: 'array', items: { type: 'boolean' } } } } },
                'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              },
            },
            ...errors(400, 401, 413),
          },
        },
      },
      '/v1/sync/get': {
        post: {
          tags: ['sync'],
          summary: 'The blocks it has among these, as a CARv1 stream with no roots; absent ones are left out (Transport.getBlocks)',
          requestBody: cidsBody,
          responses: { 200: car('blocks, unverified: the client checks each against its CID'), ...errors(400, 401, 413) },
        },
      },
      '/v1/sync/walk': {
        post: {
          tags: ['sync'],
          summary: 'Commit and tag nodes reachable from heads, newest first, never below a CID in have, at most limit, as a CARv1 stream (Transport.walkCommits)',
          requestBody: jsonBody({
            type: 'object',
            required: ['heads', 'limit'],
            properties: { heads: cidList, have: cidList, limit: { type: 'integer', minimum: 1, maximum: 65536 } },
          }),
          responses: { 200: car('commit and tag blocks'), ...errors(400, 401, 413) },
        },
      },
      '/v1/sync/put': {
        post: {
          tags: ['sync'],
          summary: 'Store blocks: a CARv1 stream, each block verified against its CID before it is stored (Transport.putBlocks)',
          description:
            'Streamed: the body is never held whole in memory. The first bad block ends the request with 422 naming its CID; blocks verified before it stay stored (a retry sends only the rest) but nothing becomes reachable from a ref. A body over the server\'s CAR limit gets 413.',
          security: WRITE,
          requestBody: { required: true, content: { 'application/vnd.ipld.car': { schema: { type: 'string', format: 'binary' } } } },
          responses: {
            200: json({ type: 'object', properties: { blocks: { type: 'integer' }, bytes: { type: 'integer' } } }, 'blocks received and verified'),
            ...errors(401, 403, 413, 415, 422),
          },
        },
      },
      '/v1/sync/cas': {
        post: {
          tags: ['sync'],
          summary: 'Move a ref by compare-and-swap (Transport.compareAndSwapRef)',
          description:
            'Refused with 422 (ERR_INCOMPLETE, naming the missing CIDs) unless the whole DAG under next is stored; with 409 (ERR_REFUSED) unless a fast-forward of expected or force; with 409 (ERR_CONFLICT) if the ref no longer has expected. On any error the ref is unchanged.',
          security: WRITE,
          requestBody: jsonBody({
            type: 'object',
            required: ['name', 'expected', 'next', 'who', 'message'],
            properties: {
              name: { type: 'string' },
              expected: { ...ref('Cid'), nullable: true, description: 'the value the pusher saw; null: the ref must not exist yet' },
              next: ref('Cid'),
              who: ref('Person'),
              message: { type: 'string', description: 'kept in the reflog (the server adds which token pushed)' },
              force: { type: 'boolean', default: false },
            },
          }),
          responses: {
            200: json({ type: 'object', properties: { name: { type: 'string' }, old: { ...ref('Cid'), nullable: true }, new: ref('Cid') } }),
            ...errors(400, 401, 403, 409, 413, 422),
          },
        },
      },
      '/v1/log': {
        get: {
          tags: ['read'],
          summary: 'Commits reachable from a revision, newest first (as `pedigree log --json`)',
          parameters: [query('rev', 'revision to start from (default main)'), query('n', 'at most this many', { type: 'integer', minimum: 0 }), query('path', 'only commits that changed this path or what is under it')],
          responses: { 200: json({ type: 'array', items: ref('Commit') }), ...errors(400, 401, 404) },
        },
      },
      '/v1/show': {
        get: {
          tags: ['read'],
          summary: 'A commit and the paths it changed; the record at REV:PATH as JSON; or the file at REV:PATH as its exact bytes (as `pedigree show`)',
          parameters: [
            query('rev', 'REV or REV:PATH', { type: 'string' }, true),
            query('limit', 'most changed paths listed for a commit (default 1000)', { type: 'integer', minimum: 0 }),
            query('format', "for a file: 'raw' (default) sends its bytes, 'json' its description", { type: 'string', enum: ['raw', 'json'] }),
          ],
          responses: {
            200: {
              description: 'commit or record JSON; a file\'s bytes (X-Pedigree-Cid and X-Pedigree-Commit headers name them)',
              content: {
                'application/json': { schema: { oneOf: [ref('ShowCommit'), ref('ShowEntry')] } },
                'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              },
            },
            ...errors(400, 401, 404),
          },
        },
      },
      '/v1/ls': {
        get: {
          tags: ['read'],
          summary: "Entries of a revision's tree (as `pedigree ls --json`), streamed",
          parameters: [query('rev', 'revision (default main)'), query('prefix', 'only paths starting with this')],
          responses: { 200: json({ type: 'array', items: ref('Entry') }), ...errors(400, 401, 404) },
        },
      },
      '/v1/diff': {
        get: {
          tags: ['read'],
          summary: 'Changes between two revisions (as `pedigree diff --json`), streamed',
          parameters: [
            query('from', 'old revision', { type: 'string' }, true),
            query('to', 'new revision (default main)'),
            query('path', 'only this path or what is under it'),
            query('stat', 'only the changed paths with sizes', { type: 'boolean' }),
          ],
          responses: { 200: json({ type: 'array', items: ref('DiffItem') }), ...errors(400, 401, 404) },
        },
      },
      '/v1/lineage': {
        get: {
          tags: ['read'],
          summary: 'The provenance graph around REV:PATH or a CID (as `pedigree lineage --json`)',
          parameters: [
            query('node', 'REV:PATH or a CID', { type: 'string' }, true),
            query('direction', 'up (what went into it, default), down (what used it) or both', { type: 'string', enum: ['up', 'down', 'both'] }),
            query('depth', 'most links to follow (default 50)', { type: 'integer', minimum: 0 }),
          ],
          responses: { 200: json(ref('LineageGraph')), ...errors(400, 401, 404) },
        },
      },
      '/v1/entry': {
        get: {
          tags: ['read'],
          summary: 'The tree entry at REV:PATH (kind, size, CID) and the commit it was resolved in',
          parameters: [query('spec', 'REV:PATH', { type: 'string' }, true)],
          responses: { 200: json({ allOf: [ref('Entry'), { type: 'object', properties: { commit: ref('Cid') } }] }), ...errors(400, 401, 404) },
        },
      },
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'a token from `pedigree token add --scope read|write` on the server' } },
      schemas: {
        Cid: { type: 'string', description: 'CIDv1, sha2-256, dag-cbor or raw, base32', example: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy' },
        Link: { type: 'object', required: ['/'], properties: { '/': ref('Cid') }, description: 'a DAG-JSON link' },
        Person: { type: 'object', required: ['name'], properties: { name: { type: 'string' }, email: { type: 'string' } } },
        Ref: { type: 'object', required: ['name', 'cid'], properties: { name: { type: 'string' }, cid: ref('Cid') } },
        Commit: {
          type: 'object',
          properties: {
            cid: ref('Cid'),
            tree: ref('Link'),
            parents: { type: 'array', items: ref('Link') },
            author: ref('Person'),
            time: { type: 'integer', description: 'ms since the epoch' },
            date: { type: 'string', format: 'date-time' },
            message: { type: 'string' },
            meta: { type: 'object', additionalProperties: true },
          },
        },
        Entry: { type: 'object', properties: { path: { type: 'string' }, kind: { type: 'string', enum: ['record', 'file'] }, size: { type: 'integer' }, cid: ref('Cid') } },
        ShowCommit: {
          allOf: [
            ref('Commit'),
            {
              type: 'object',
              properties: {
                type: { type: 'string', enum: ['commit'] },
                counts: { type: 'object', properties: { added: { type: 'integer' }, modified: { type: 'integer' }, removed: { type: 'integer' } } },
                changes: {
                  type: 'array',
                  items: { type: 'object', properties: { type: { type: 'string', enum: ['added', 'modified', 'removed'] }, path: { type: 'string' }, before: ref('Entry'), after: ref('Entry') } },
                },
                truncated: { type: 'boolean' },
              },
            },
          ],
        },
        ShowEntry: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['record', 'file'] },
            path: { type: 'string' },
            cid: ref('Cid'),
            commit: ref('Cid'),
            size: { type: 'integer' },
            value: { type: 'object', additionalProperties: true, description: 'a record, as DAG-JSON' },
            tainted: { type: 'object', additionalProperties: true },
          },
        },
        DiffItem: {
          type: 'object',
          properties: {
            type: { type: 'string', enum: ['added', 'modified', 'removed'] },
            path: { type: 'string' },
            kind: { type: 'string' },
            before: ref('Entry'),
            after: ref('Entry'),
            fields: { type: 'array', items: { type: 'object', additionalProperties: true } },
            patch: { type: 'string' },
            binary: { type: 'boolean' },
            storage: { type: 'object', additionalProperties: true },
            tensors: { type: 'array', items: { type: 'object', additionalProperties: true } },
            note: { type: 'string' },
          },
        },
        LineageGraph: {
          type: 'object',
          properties: { root: { type: 'string' }, direction: { type: 'string' }, nodes: { type: 'array', items: { type: 'object', additionalProperties: true } }, edges: { type: 'array', items: { type: 'object', additionalProperties: true } } },
          additionalProperties: true,
        },
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message', 'data'],
              properties: { code: { type: 'string', example: 'ERR_NOT_FOUND' }, message: { type: 'string' }, data: { type: 'object', additionalProperties: true } },
            },
          },
        },
      },
      responses: Object.fromEntries(
        (
          [
            [400, 'bad input (ERR_INVALID_INPUT, ERR_INVALID_REF_NAME, ERR_AMBIGUOUS, ERR_UNSAFE_PATH, ERR_UNSUPPORTED)'],
            [401, 'no token where one is needed, or a token that is not valid (ERR_UNAUTHORIZED)'],
            [403, 'a read token used to write (ERR_FORBIDDEN)'],
            [404, 'no such ref, revision, path or route (ERR_NOT_FOUND)'],
            [409, 'a stale compare-and-swap (ERR_CONFLICT) or a refused move (ERR_REFUSED)'],
            [413, 'a body over the server\'s limit (ERR_TOO_LARGE)'],
            [415, 'a push body that is not a CAR stream (ERR_UNSUPPORTED_MEDIA_TYPE)'],
            [422, 'a block that does not match its CID (ERR_CORRUPT, also a truncated CAR body) or a DAG with blocks missing (ERR_INCOMPLETE)'],
          ] as const
        ).map(([s, d]) => [`E${s}`, json(ref('Error'), d)]),
      ),
    },
  }
}
