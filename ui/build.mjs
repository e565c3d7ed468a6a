// Builds the page into ../api/static/ui (committed, so installs need no Node and no CDN).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'api', 'static', 'ui');
const cytoscape = JSON.parse(readFileSync(join(here, 'node_modules', 'cytoscape', 'package.json')));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  outfile: join(out, 'app.js'),
  banner: {
    js: `/*! ttpgraph actor-overlap page. Bundles cytoscape ${cytoscape.version} (MIT): see THIRD-PARTY-LICENSES.txt */`,
  },
  legalComments: 'none',
  logLevel: 'warning',
});
await build({
  entryPoints: [join(here, 'src', 'style.css')],
  minify: true,
  outfile: join(out, 'app.css'),
  logLevel: 'warning',
});
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
writeFileSync(
  join(out, 'THIRD-PARTY-LICENSES.txt'),
  `cytoscape ${cytoscape.version} (${cytoscape.homepage})\n\n` +
    readFileSync(join(here, 'node_modules', 'cytoscape', 'LICENSE'), 'utf8'),
);
console.log(`built ${out}`);
