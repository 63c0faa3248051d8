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
import { readdirSync, rmSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)))
const dist = resolve(process.argv[2] ?? join(ROOT, 'dist'))
const commands = join(dist, 'commands')

// classic-level finds its compiled LevelDB binding through its own __dirname, which a bundle
// does not have: load it from the installed package instead.
const nativeBinding = {
  name: 'classic-level-binding',
  setup(b) {
    b.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, () => ({
      contents: "module.exports = require('node-gyp-build')(require('node:path').dirname(require.resolve('classic-level/package.json')))",
      loader: 'js',
    }))
  },
}

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
const result = await build({
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
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
})
const outputs = Object.entries(result.metafile.outputs)
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0)
console.log(`bundled ${entries.length} commands into ${outputs.length} files (${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`)
