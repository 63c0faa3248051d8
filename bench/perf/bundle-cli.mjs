#!/usr/bin/env node
// Prototype (not part of the build): bundle the CLI's commands, so that a command loads a few
// files instead of ~45 of ours and of multiformats. Rewrites DIR/dist/commands/**/*.js in place
// (after `tsc`), each as an ES module bundle; code they share, and every module imported lazily
// (`await import(...)`), goes to DIR/dist/chunks. The library (dist/index.js and the rest of
// dist/) is left as tsc wrote it.
//
//   node bench/perf/bundle-cli.mjs --root=DIR     (DIR: a copy of the tree with dist/ built)
//
// Needs esbuild (0.28.x; here the copy tsx depends on). Packages left external: @oclif/core (the
// CLI runtime loads it; a second copy would break `instanceof` checks) and the large ones commands
// import lazily: fastify, @aws-sdk/*. LevelDB's compiled binding is loaded from node_modules.
import { readdirSync, rmSync, statSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { build } from 'esbuild'
import { ROOT, parseArgs } from './util.mjs'

const args = parseArgs()
if (!args.root) {
  console.error('usage: node bench/perf/bundle-cli.mjs --root=DIR (a copy of the tree: its dist/commands is rewritten)')
  process.exit(2)
}
const root = resolve(args.root)
if (root === resolve(ROOT) && !args['this-tree']) {
  console.error(`refusing to rewrite ${root}/dist, which other processes use; pass --this-tree to do it anyway`)
  process.exit(2)
}
// classic-level finds its compiled LevelDB binding through its own __dirname, which a bundle does
// not have: point it at the installed package instead.
const nativeBinding = {
  name: 'classic-level-binding',
  setup(b) {
    b.onLoad({ filter: /classic-level[\\/]binding\.js$/ }, () => ({
      contents: "module.exports = require('node-gyp-build')(require('node:path').dirname(require.resolve('classic-level/package.json')))",
      loader: 'js',
    }))
  },
}
const commands = join(root, 'dist/commands')
const entries = []
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) walk(path)
    else if (name.endsWith('.js')) entries.push(path)
  }
}
walk(commands)
rmSync(join(root, 'dist/chunks'), { recursive: true, force: true })
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
  external: ['@oclif/core', 'fastify', '@aws-sdk/*'],
  // ES module builds where a package has one (jsonc-parser's UMD build requires its files dynamically).
  mainFields: ['module', 'main'],
  plugins: [nativeBinding],
  // CommonJS code inside the bundle (none of ours) may call require.
  banner: { js: "import { createRequire as __pedigreeCreateRequire } from 'node:module'; const require = __pedigreeCreateRequire(import.meta.url);" },
  sourcemap: false,
  metafile: true,
  logLevel: 'warning',
})
const outputs = Object.entries(result.metafile.outputs)
const bytes = outputs.reduce((n, [, o]) => n + o.bytes, 0)
console.log(`${entries.length} commands bundled into ${outputs.length} files (${(bytes / 1024).toFixed(0)} KiB) in ${(performance.now() - t0).toFixed(0)} ms`)
