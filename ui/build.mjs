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
// Two pages, one bundle each: the actor-overlap network (cytoscape) and the ATT&CK matrix.
const pages = [
  { entry: 'main.js', out: 'app.js', banner: `ttpgraph actor-overlap page. Bundles cytoscape ${cytoscape.version} (MIT): see THIRD-PARTY-LICENSES.txt` },
  { entry: 'matrix.js', out: 'matrix.js', banner: 'ttpgraph ATT&CK matrix page' },
];
for (const page of pages) {
  await build({
    entryPoints: [join(here, 'src', page.entry)],
    bundle: true,
    minify: true,
    format: 'iife',
    target: ['es2020'],
    outfile: join(out, page.out),
    banner: { js: `/*! ${page.banner} */` },
    legalComments: 'none',
    logLevel: 'warning',
  });
}
for (const [css, target] of [['style.css', 'app.css'], ['matrix.css', 'matrix.css']]) {
  await build({
    entryPoints: [join(here, 'src', css)],
    minify: true,
    outfile: join(out, target),
    logLevel: 'warning',
  });
}
copyFileSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
copyFileSync(join(here, 'src', 'matrix.html'), join(out, 'matrix.html'));
writeFileSync(
  join(out, 'THIRD-PARTY-LICENSES.txt'),
  `cytoscape ${cytoscape.version} (${cytoscape.homepage})\n\n` +
    readFileSync(join(here, 'node_modules', 'cytoscape', 'LICENSE'), 'utf8'),
);
console.log(`built ${out}`);
