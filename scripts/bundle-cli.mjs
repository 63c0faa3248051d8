#!/usr/bin/env node
// Build step after `tsc` (npm run build): bundle each CLI command, so that a short command such
// as `pedigree log` loads a handful of files instead of ~45 of ours and of multiformats. Start-up
// is most of the time of a short command; see bench/perf/NOTES.md for the measurements.
//
// Rewrites dist/commands/**/*.js in place, each as an ES module bundle; code they share, and every
// module they import lazily (`await import(...)`), goes to dist/chunks. The library (dist/index.js
// and the rest of dist/) is left as tsc wrote it. Packages left external: @oclif/core (the CLI
// runtime loads it; a second copy would break its `instanceof` checks) and the large ones that
// commands import lazily (fastify, @aws-sdk/*). LevelDB's compiled binding stays in node_modules.
//
//   node scripts/bundle-cli.mjs [DIST_DIR]     (default: dist/ of this checkout)
//
// One shared chunk for what every command loads: esbuild puts each module in a chunk by the set
// of entry points (commands, and every module imported lazily) that reach it, which cut the ~40
// modules under cli/base-command.js (the store, trees, refs, codecs, errors) into ~17 chunks of
// a few KB each. Node 20 spends ~0.3-0.45 ms of CPU per ES module it loads, however small, so
// the bundler gives each of our modules outside that core an import of the core's roots: every
// entry then reaches every core module, and the core is one chunk. Evaluation order stays valid
// (the core imports nothing outside itself, so it may always run first; in a command it does).
import { readdirSync, realpathSync, rmSync, statSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
// Real path: esbuild reports modules by theirs, and the core is recognised by path.
const dist = realpathSync(resolve(process.argv[2] ?? join(ROOT, 'dist')))
const commands = join(dist, 'commands')

// classic-level finds its compiled LevelDB binding through its own __dirname, which a bundle
// does not have: load it from the installed package instead. node-gyp-build, which picks the
// binary, costs ~1.5 ms of CPU on every start (its module, then listing and parsing the names of
// the prebuilt binaries); the binary it picks here at build time is tried first at run time, on
// the same platform and only where node-gyp-build would pick it too (no local build, no
// override, not musl), and anything else, a failure included, goes through node-gyp-build.
const require = createRequire(import.meta.url)
const levelDir = dirname(require.resolve('classic-level/package.json'))
const builtBinary = relative(levelDir, require('node-gyp-build').resolve(levelDir)).split(sep).join('/')
const platform = `${process.platform}-${process.arch}`
const nativeBinding = {
  name: 'classic-level-binding',
  setup(b) {
    b.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, () => ({
      contents: `const { existsSync } = require('node:fs')
const { dirname, join } = require('node:path')
const dir = dirname(require.resolve('classic-level/package.json'))
function prebuilt() {
  const e = process.env
  if (${JSON.stringify(!builtBinary.startsWith('prebuilds/'))} || \`\${process.platform}-\${process.arch}\` !== ${JSON.stringify(platform)}) return undefined
  if (e.CLASSIC_LEVEL_PREBUILD || e.PREBUILDS_ONLY || e.LIBC || e.npm_config_arch || e.npm_config_platform) return undefined
  if (existsSync(join(dir, 'build')) || (process.platform === 'linux' && existsSync('/etc/alpine-release'))) return undefined
  try {
    return require(join(dir, ${JSON.stringify(builtBinary)}))
  } catch {
    return undefined
  }
}
// node-gyp-build as classic-level finds it, left out of the bundle (only this fallback needs it).
module.exports = prebuilt() ?? require('node:module').createRequire(join(dir, 'package.json'))('node-gyp-build')(dir)
`,
      loader: 'js',
    }))
  },
}

/**
 * The modules every command loads, by their roots: all they import statically is core too.
 * (format.js: most commands print commits or entries; invalidations-ref.js: a name that `log`
 * looks up on every run, which would otherwise be a chunk of its own.)
 */
const CORE_ROOTS = ['cli/base-command.js', 'cli/format.js', 'repo/invalidations-ref.js'].map((f) => join(dist, f))

const entries = []
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (name.endsWith('.js')) entries.push(path)
  }
}
walk(commands)
rmSync(join(dist, 'chunks'), { recursive: true, force: true })
const t0 = performance.now()
const options = {
  entryPoints: entries,
  outbase: commands,
  outdir: commands,
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  chunkNames: '../chunks/[name]-[hash]',
  external: ['@oclif/core', 'fastify', '@fastify/*', '@aws-sdk/*'],
  // ES module builds where a package has one (jsonc-parser's UMD build requires its files dynamically).
  mainFields: ['module', 'main'],
  plugins: [nativeBinding],
  // CommonJS code inside the bundle (level's, not ours) calls require.
  banner: { js: "import { createRequire as __pedigreeCreateRequire } from 'node:module'; const require = __pedigreeCreateRequire(import.meta.url);" },
  // Node compiles every byte it loads: without whitespace and with shorter syntax the shared chunk
  // is a third smaller and loads ~1.5 ms sooner. Names are kept, so stack traces still read.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
}

// Pass 1 (nothing written): which modules the core roots import statically.
const scan = await build({ ...options, write: false, absWorkingDir: dist })
const inputOf = (file) => scan.metafile.inputs[relative(dist, file)]
const staticClosure = (file, into = new Set()) => {
  if (into.has(file)) return into
  into.add(file)
  const input = inputOf(file)
  if (!input) throw new Error(`bundle-cli: ${file} is not part of any command's bundle`)
  for (const i of input.imports) if (i.kind === 'import-statement' && !i.external) staticClosure(resolve(dist, i.path), into)
  return into
}
const core = new Set()
for (const root of CORE_ROOTS) staticClosure(root, core)
const coreImports = CORE_ROOTS.map((f) => `import ${JSON.stringify(f)};\n`).join('')
const hasDefault = new Set(Object.values(scan.metafile.outputs).filter((o) => o.entryPoint && o.exports.includes('default')).map((o) => resolve(dist, o.entryPoint)))

// Pass 2: every module of ours outside the core imports the core's roots first. A module that
// is imported lazily and reaches the core without being ours outside it (store/s3/url.js, in the
// core and imported lazily by serve; @ipld/car's iterator, which imports multiformats) is
// imported through a proxy that does the same, so that it too reaches all of the core.
const oneCoreChunk = {
  name: 'one-core-chunk',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.kind !== 'dynamic-import' || args.pluginData === 'one-core-chunk') return undefined
      const target = await b.resolve(args.path, { resolveDir: args.resolveDir, kind: args.kind, importer: args.importer, pluginData: 'one-core-chunk' })
      if (target.errors.length > 0 || target.external || !inputOf(target.path)) return undefined
      const ours = target.path.startsWith(dist + sep) && !core.has(target.path)
      const reachesCore = [...staticClosure(target.path)].some((f) => core.has(f))
      return ours || !reachesCore ? undefined : { path: target.path, namespace: 'core-proxy' }
    })
    b.onLoad({ filter: /.*/, namespace: 'core-proxy' }, (args) => {
      const spec = JSON.stringify(args.path)
      const reexport = `export * from ${spec};\n` + (hasDefault.has(args.path) ? `export { default } from ${spec};\n` : '')
      return { contents: coreImports + reexport, loader: 'js', resolveDir: dirname(args.path) }
    })
    b.onLoad({ filter: /\.js$/ }, async (args) => {
      if (args.namespace !== 'file' || !args.path.startsWith(dist + sep) || core.has(args.path)) return undefined
      return { contents: coreImports + (await readFile(args.path, 'utf8')), loader: 'js', resolveDir: dirname(args.path) }
    })
  },
}
const result = await build({ ...options, absWorkingDir: dist, plugins: [...options.plugins, oneCoreChunk] })

// Worker threads' modules (util/job-worker.ts) are started by file, not imported: each is one
// bundle of its own in dist/chunks/, where the code that starts it, in a command or a chunk,
// looks for it.
const WORKERS = ['repo/ingest-worker.js']
for (const worker of WORKERS) {
  await build({
    ...options,
    entryPoints: [join(dist, worker)],
    outdir: undefined,
    outbase: undefined,
    splitting: false,
    outfile: join(dist, 'chunks', worker.slice(worker.lastIndexOf('/') + 1)),
    absWorkingDir: dist,
  })
}
const outputs = Object.entries(result.metafile.outputs)
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0)
console.log(`bundled ${entries.length} commands into ${outputs.length} files (${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`)
